//! Recovery actions: what a firing alert makes the sentinel do.
//!
//! Alerts come in as [`crate::model::AlertEvent`]s, from this sentinel's rules after each evaluation
//! or from Alertmanager's webhook. The [`dispatcher`] lets the [`policy`] decide (cool-down per
//! action and node, runs per episode, resolve, escalation), passes each decided run through the
//! [`guard`]rails (precondition, partition guard, approval, circuit breaker), writes each run to the durable
//! [`outbox`] before trying it, and [`deliver`]s it: a [`command`] (argv and environment from
//! [`argv`], never a shell), a webhook ([`webhook`], with Alertmanager's [`payload`]), a push to
//! Alertmanager ([`alertmanager`]), a [`builtin`] (repo GC, pin reallocation, bootstrap
//! reconnection), or a run on the peer the alert is about ([`remote`]). Every attempt lands in
//! the [`audit`] log and the [`stats`].
pub mod alertmanager;
pub mod argv;
pub mod audit;
pub mod builtin;
pub mod command;
pub mod deliver;
pub mod dispatcher;
pub mod guard;
pub mod outbox;
pub mod payload;
pub mod policy;
pub mod remote;
pub mod stats;
pub mod webhook;
