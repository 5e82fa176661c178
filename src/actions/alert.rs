//! The alert as recovery actions see it. The type itself, [`AlertEvent`], lives in the shared
//! model ([`crate::model`]), since the rules hand it to the actions and `rules/` never imports
//! `actions/`; this module names it for the actions' own files.
//!
//! Owns nothing of its own: it does not decide or run anything.

pub use crate::model::{fingerprint, AlertEvent, LabelSet, Status};
