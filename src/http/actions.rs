//! The recovery actions' endpoints: `GET /api/v1/actions` (the audit log),
//! `POST /api/v1/alertmanager/webhook` (Alertmanager's webhook receiver: alerts evaluated by
//! Prometheus run the same recovery) and `POST /api/v1/actions/{name}/run` (a peer sentinel
//! asking this one to run an action for this node). The two POSTs change state: they answer
//! 403 unless the sentinel was started with `--web.enable-remote-actions`. An operator answers
//! proposals with `POST /api/v1/actions/runs/{id}/approve` or `.../reject` and closes the
//! circuit breaker with `POST /api/v1/actions/circuit/reset`; those need the web token.
//!
//! Owns request parsing and answers; deciding and running are the dispatcher's.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::AppState;
use crate::actions::dispatcher::{AnswerRefusal, GuardView, RemoteRefusal};
use crate::actions::remote::RemoteRequest;
use crate::clock::rfc3339;
use crate::model::Sighting;
use crate::model::{AlertEvent, LabelSet, Status};

/// Records listed by default, and at most.
const DEFAULT_LIMIT: usize = 100;

fn not_enabled() -> Response {
    (
        StatusCode::FORBIDDEN,
        "Remote actions are not enabled: start the sentinel with --web.enable-remote-actions.\n",
    )
        .into_response()
}

/// `GET /api/v1/actions?limit=N`: recent runs, newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let limit = match p.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) => n.min(crate::actions::audit::KEEP),
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "limit must be a whole number\n").into_response()
        }
    };
    let guard = state.actions.as_ref().map(|a| a.guard());
    Json(json!({
        "status": "success",
        "data": {
            "dry_run": state.actions.as_ref().is_some_and(|a| a.dry_run()),
            "runs": state.audit.recent(limit),
            "proposals": guard.as_ref().map(|g| g.proposals.clone()).unwrap_or_default(),
            "circuit": guard.as_ref().map(|g| g.circuit.clone()).unwrap_or_default(),
            "verifying": guard.as_ref().map_or(0, |g| g.verifying),
        }
    }))
    .into_response()
}

/// The guardrails as the page shows them: proposals and the circuit breaker.
#[derive(Debug, Clone, Serialize)]
pub struct GuardPanel {
    /// Proposals waiting for approval, oldest first.
    pub proposals: Vec<ProposalRow>,
    /// Whether `actions.circuit_breaker` is configured.
    pub circuit_configured: bool,
    /// Whether the breaker is open.
    pub circuit_open: bool,
    /// When it closes on its own, while open (RFC 3339).
    pub circuit_closes: String,
    /// Runs counted in the window, e.g. `3 of 10 in 600s`.
    pub circuit_window: String,
    /// Runs being verified.
    pub verifying: usize,
}

/// One proposal on the page.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalRow {
    /// Its id.
    pub id: String,
    /// The action.
    pub action: String,
    /// The node it is for.
    pub node_id: String,
    /// The alert that asked for it.
    pub alertname: String,
    /// What it would do.
    pub would_run: String,
    /// When it was proposed (RFC 3339).
    pub proposed: String,
    /// When it expires (RFC 3339).
    pub expires: String,
}

/// The page's view of the guardrails.
pub fn guard_panel(view: &GuardView) -> GuardPanel {
    let c = &view.circuit;
    GuardPanel {
        proposals: view
            .proposals
            .iter()
            .map(|p| ProposalRow {
                id: p.id.clone(),
                action: p.action.clone(),
                node_id: p.node_id.clone(),
                alertname: p.alertname.clone(),
                would_run: p.would_run.clone(),
                proposed: rfc3339(p.proposed_ms),
                expires: rfc3339(p.expires_ms),
            })
            .collect(),
        circuit_configured: c.configured,
        circuit_open: c.open,
        circuit_closes: c.closes_ms.map(rfc3339).unwrap_or_default(),
        circuit_window: format!(
            "{} of {} runs in {}s",
            c.runs_in_window, c.max_runs, c.per_seconds
        ),
        verifying: view.verifying,
    }
}

/// Who answered a proposal, as the request says: the `by` query parameter or the JSON body's
/// `approver`, each marked as stated by the web token's holder; else `the web token holder`.
/// (The token travels in the `Authorization` header, so a request carrying it carries no
/// basic-auth user.)
pub fn approver(query: &HashMap<String, String>, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        approver: Option<String>,
    }
    let stated = query.get("by").cloned().or_else(|| {
        serde_json::from_slice::<Body>(body)
            .ok()
            .and_then(|b| b.approver)
    });
    let clean = |s: String| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect::<String>()
            .trim()
            .to_owned()
    };
    match stated.map(clean).filter(|s| !s.is_empty()) {
        Some(name) => format!("{name} (named in the request, authenticated by the web token)"),
        None => "the web token holder (no name given: pass ?by=NAME)".to_owned(),
    }
}

fn needs_token() -> Response {
    (
        StatusCode::FORBIDDEN,
        "Approving, rejecting and resetting need a token: start the sentinel with --web.token-file FILE and send Authorization: Bearer TOKEN.\n",
    )
        .into_response()
}

async fn answer(state: AppState, id: String, approve: bool, by: String) -> Response {
    let Some(actions) = state.actions.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "recovery actions are not running here\n",
        )
            .into_response();
    };
    match actions.answer(id, approve, by.clone()).await {
        Ok(proposal) => Json(json!({
            "status": "success",
            "data": {
                "decision": if approve { "approved" } else { "rejected" },
                "by": by,
                "proposal": proposal,
            }
        }))
        .into_response(),
        Err(e @ AnswerRefusal::Unknown(_)) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e @ AnswerRefusal::ShuttingDown) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}

/// `POST /api/v1/actions/runs/{id}/approve[?by=NAME]`: runs the proposal (past the circuit
/// breaker); the approver and the time go into the audit. Needs the web token.
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    decide(state, id, &q, &body, true).await
}

/// `POST /api/v1/actions/runs/{id}/reject[?by=NAME]`: the proposal never runs; recorded with
/// who rejected it. Needs the web token.
pub async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    decide(state, id, &q, &body, false).await
}

/// Approves or rejects proposal `id` for whoever the request names; refused without a token.
async fn decide(
    state: AppState,
    id: String,
    q: &HashMap<String, String>,
    body: &Bytes,
    approve: bool,
) -> Response {
    if state.token.is_none() {
        return needs_token();
    }
    let by = approver(q, body);
    answer(state, id, approve, by).await
}

/// `POST /api/v1/actions/circuit/reset[?by=NAME]`: closes the circuit breaker now. Needs the
/// web token.
pub async fn reset_circuit(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if state.token.is_none() {
        return needs_token();
    }
    let Some(actions) = state.actions.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "recovery actions are not running here\n",
        )
            .into_response();
    };
    let by = approver(&q, &body);
    match actions.reset_circuit(by.clone()).await {
        Some(was_open) => Json(json!({
            "status": "success",
            "data": {"was_open": was_open, "by": by}
        }))
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the sentinel is shutting down\n",
        )
            .into_response(),
    }
}

/// One alert of Alertmanager's webhook payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedAlert {
    status: String,
    #[serde(default)]
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

/// Alertmanager's webhook payload, the parts used.
#[derive(Debug, Deserialize)]
struct Payload {
    version: String,
    alerts: Vec<ReceivedAlert>,
}

/// Reads a `startsAt`/`endsAt` of alert `n` (1-based): RFC 3339 with any offset, as
/// Alertmanager writes them; ms. Missing, or Go's zero time (no end yet), is 0.
fn parse_time(n: usize, field: &str, text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    crate::clock::parse_rfc3339(text)
        .map(|ms| ms.max(0))
        .map_err(|e| format!("alert {n}: {field}: {e}"))
}

/// Reads Alertmanager's webhook payload (version 4) into alerts, without their actions.
pub fn parse_alertmanager_payload(body: &[u8]) -> Result<Vec<AlertEvent>, String> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| format!("not an Alertmanager webhook payload: {e}"))?;
    if payload.version != "4" {
        return Err(format!(
            "Alertmanager webhook payload version {:?}; only \"4\" is understood",
            payload.version
        ));
    }
    payload
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let status = match a.status.as_str() {
                "firing" => Status::Firing,
                "resolved" => Status::Resolved,
                other => {
                    return Err(format!(
                        "alert status {other:?} is neither firing nor resolved"
                    ))
                }
            };
            Ok(AlertEvent {
                labels: a.labels,
                annotations: a.annotations,
                status,
                value: f64::NAN,
                starts_at_ms: parse_time(i + 1, "startsAt", &a.starts_at)?,
                ends_at_ms: parse_time(i + 1, "endsAt", &a.ends_at)?,
                generator_url: a.generator_url,
                actions: Vec::new(),
                expr: String::new(),
            })
        })
        .collect()
}

/// `POST /api/v1/alertmanager/webhook`: runs the actions each alert's `action` label or the
/// configured routes name, under the same policy as this sentinel's own alerts. 400 for a body
/// that is not a webhook payload; 200 with what was accepted otherwise (unknown action names
/// are listed and logged, not retried by Alertmanager).
pub async fn alertmanager_webhook(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(actions) = state.actions.clone().filter(|_| state.remote_actions) else {
        return not_enabled();
    };
    let alerts = match parse_alertmanager_payload(&body) {
        Ok(alerts) => alerts,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let mut unknown: BTreeMap<String, ()> = BTreeMap::new();
    let mut sightings = Vec::new();
    for mut alert in alerts {
        let (known, missing): (Vec<String>, Vec<String>) = actions
            .actions_for(&alert.labels)
            .into_iter()
            .partition(|a| actions.knows(a));
        for m in missing {
            unknown.insert(m, ());
        }
        if known.is_empty() {
            continue;
        }
        alert.actions = known;
        sightings.push(Sighting {
            alert,
            due_for_sending: false,
        });
    }
    if !unknown.is_empty() {
        tracing::warn!(actions = ?unknown.keys().collect::<Vec<_>>(), "Alertmanager named recovery actions this sentinel does not define");
    }
    let accepted = sightings.len();
    actions.send(sightings).await;
    Json(json!({
        "status": "success",
        "data": {"accepted": accepted, "unknown_actions": unknown.keys().collect::<Vec<_>>()}
    }))
    .into_response()
}

/// `POST /api/v1/actions/{name}/run`: a peer asks this sentinel to run one of its actions for
/// this node. Answers when the run ends; the same job id is run once, its result given again.
pub async fn run_for_peer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(actions) = state.actions.clone().filter(|_| state.remote_actions) else {
        return not_enabled();
    };
    let request: RemoteRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a remote run request: {e}\n"),
            )
                .into_response()
        }
    };
    match actions.run_for_peer(name, request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e @ RemoteRefusal::UnknownAction(_)) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e @ RemoteRefusal::Running(_)) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
        Err(e @ RemoteRefusal::ShuttingDown) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_alertmanagers_payload() {
        let body = br#"{"receiver":"sentinel","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","action":"gc"},"annotations":{"summary":"x"},"startsAt":"2026-11-28T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p/graph","fingerprint":"abc"}],"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","version":"4","groupKey":"{}:{}","truncatedAlerts":0}"#;
        let alerts = parse_alertmanager_payload(body).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].alertname(), "DiskFull");
        assert_eq!(alerts[0].status, Status::Firing);
        assert_eq!(alerts[0].starts_at_ms, 1_795_860_000_123);
        assert_eq!(alerts[0].ends_at_ms, 0, "Go's zero time is no end");
        let offset = String::from_utf8_lossy(body).replace(
            "2026-11-28T10:00:00.123456789Z",
            "2026-11-28T12:00:00.123456789+02:00",
        );
        let alerts = parse_alertmanager_payload(offset.as_bytes()).unwrap();
        assert_eq!(alerts[0].starts_at_ms, 1_795_860_000_123);
    }

    #[test]
    fn the_approver_is_the_name_the_request_gives_or_the_token_holder() {
        let q = |by: &str| HashMap::from([("by".to_owned(), by.to_owned())]);
        assert!(approver(&q("alice"), b"").starts_with("alice (named in the request"));
        assert!(approver(&HashMap::new(), br#"{"approver":"bob"}"#).starts_with("bob ("));
        assert!(approver(&HashMap::new(), b"").starts_with("the web token holder"));
        let forged = approver(&q("eve\napproved by root"), b"");
        assert!(
            !forged.contains('\n'),
            "no line breaks into the audit: {forged}"
        );
        assert!(approver(&q("  "), b"").starts_with("the web token holder"));
    }

    #[test]
    fn bad_payloads_say_why() {
        assert!(parse_alertmanager_payload(b"[]")
            .unwrap_err()
            .contains("not an Alertmanager"));
        assert!(
            parse_alertmanager_payload(br#"{"version":"3","alerts":[]}"#)
                .unwrap_err()
                .contains("version")
        );
        assert!(
            parse_alertmanager_payload(br#"{"version":"4","alerts":[{"status":"odd"}]}"#)
                .unwrap_err()
                .contains("odd")
        );
        let e = parse_alertmanager_payload(
            br#"{"version":"4","alerts":[{"status":"firing","startsAt":"2026-11-28 noon"}]}"#,
        )
        .unwrap_err();
        assert!(e.starts_with("alert 1: startsAt: cannot parse"), "{e}");
    }
}
