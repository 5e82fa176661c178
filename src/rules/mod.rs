//! The rule engine: Prometheus alerting and recording rules evaluated on the node, over its
//! own history ([`source`]) with a PromQL evaluator of Prometheus 2.42's semantics
//! ([`promql`]).
pub mod load;
pub mod promql;
pub mod source;
