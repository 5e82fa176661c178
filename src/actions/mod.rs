//! Recovery actions: what a firing alert makes the sentinel do. The audit log of every run
//! ([`audit`]) is the record the API and the dashboard read.
pub mod audit;
