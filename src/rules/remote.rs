//! A remote Prometheus-compatible datasource for rules: each expression goes to
//! `GET /api/v1/query?query=...&time=...` at the evaluation time, instead of being evaluated
//! over the local history. For clusters too big for one node's view.
//!
//! Owns the HTTP call, its credentials (read from files once, never logged) and the reading of
//! the answer (vector or scalar). A failure is an evaluation error: the rule's health turns
//! `err` and its alerts keep their state.
//!
//! The answers for one evaluation are fetched before it, with no lock held, and handed to the
//! engine as [`RemoteAnswers`]: a slow datasource never holds up a request that reads the rules
//! or the history, and holds up the history's next tick by one evaluation interval at most.

use std::collections::HashMap;

use futures::StreamExt;
use serde::Deserialize;

use super::promql::{EvalError, Labels};
use crate::config::{read_secret, DatasourceConfig};

/// Credentials for the datasource.
#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

/// How many expressions are sent to the datasource at once.
const CONCURRENT_QUERIES: usize = 8;

/// What the datasource answered to each expression of one evaluation.
#[derive(Debug, Default)]
pub struct RemoteAnswers {
    /// The evaluation time the expressions were sent with, ms.
    pub at_ms: i64,
    /// Each expression's samples, or why there are none.
    pub answers: HashMap<String, Result<Vec<(Labels, f64)>, EvalError>>,
}

/// A Prometheus-compatible query API.
#[derive(Clone)]
pub struct RemoteDatasource {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: Auth,
}

impl std::fmt::Debug for RemoteDatasource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("RemoteDatasource")
            .field("url", &self.url.as_str())
            .finish()
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    metric: Labels,
    value: (f64, String),
}

fn parse_value(s: &str) -> Result<f64, EvalError> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other.parse().map_err(|_| {
            EvalError(format!(
                "datasource sent a value that is not a number: {other:?}"
            ))
        }),
    }
}

/// Reads `/api/v1/query`'s answer into samples (a scalar is one sample without labels).
pub fn parse_answer(body: &[u8]) -> Result<Vec<(Labels, f64)>, EvalError> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| EvalError(format!("datasource answer is not Prometheus's JSON: {e}")))?;
    if answer.status != "success" {
        return Err(EvalError(format!(
            "datasource: {}",
            answer.error.unwrap_or_else(|| answer.status.clone())
        )));
    }
    let data = answer
        .data
        .ok_or_else(|| EvalError("datasource answer has no data".into()))?;
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem> = serde_json::from_value(data.result)
                .map_err(|e| EvalError(format!("datasource vector: {e}")))?;
            items
                .into_iter()
                .map(|i| Ok((i.metric, parse_value(&i.value.1)?)))
                .collect()
        }
        "scalar" => {
            let (_, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| EvalError(format!("datasource scalar: {e}")))?;
            Ok(vec![(Labels::new(), parse_value(&v)?)])
        }
        other => Err(EvalError(format!(
            "datasource answered a {other}, not an instant vector"
        ))),
    }
}

impl RemoteDatasource {
    /// A datasource for `config`; reads its credential files now.
    pub fn new(config: &DatasourceConfig) -> Result<Self, String> {
        let auth = match (&config.basic_auth_file, &config.bearer_token_file) {
            (Some(_), Some(_)) => return Err("cluster.monitoring.datasource: give basic_auth_file or bearer_token_file, not both".into()),
            (Some(p), None) => {
                let line = read_secret(p, "cluster.monitoring.datasource.basic_auth_file")?;
                let (u, pw) = line.split_once(':').ok_or_else(|| format!("{}: expected one line user:password", p.display()))?;
                Auth::Basic(u.to_owned(), pw.to_owned())
            }
            (None, Some(p)) => Auth::Bearer(read_secret(p, "cluster.monitoring.datasource.bearer_token_file")?),
            (None, None) => Auth::None,
        };
        let client = crate::clients::http_client(config.timeout_seconds.duration())
            .map_err(|e| e.to_string())?;
        let url = config
            .url
            .0
            .join("api/v1/query")
            .map_err(|e| e.to_string())?;
        Ok(Self { client, url, auth })
    }

    /// Runs `expr` at `at_ms` on the datasource.
    pub async fn query(&self, expr: &str, at_ms: i64) -> Result<Vec<(Labels, f64)>, EvalError> {
        let time = format!("{:.3}", at_ms as f64 / 1000.0);
        let mut request = self
            .client
            .get(self.url.clone())
            .query(&[("query", expr), ("time", &time)]);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic(u, p) => request.basic_auth(u, Some(p)),
            Auth::Bearer(t) => request.bearer_auth(t),
        };
        let response = request
            .send()
            .await
            .map_err(|e| EvalError(format!("datasource {}: {e}", self.url)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| EvalError(format!("datasource {}: {e}", self.url)))?;
        if !status.is_success()
            && status != reqwest::StatusCode::BAD_REQUEST
            && status != reqwest::StatusCode::UNPROCESSABLE_ENTITY
        {
            return Err(EvalError(format!("datasource {}: HTTP {status}", self.url)));
        }
        parse_answer(&body)
    }

    /// Runs every expression at `at_ms`, a few at a time, for at most `budget`: an expression
    /// still unanswered then gets an error, so a slow datasource marks its rules `err` instead
    /// of holding up the history's next tick.
    pub async fn query_all(
        &self,
        exprs: Vec<String>,
        at_ms: i64,
        budget: std::time::Duration,
    ) -> RemoteAnswers {
        let mut answers = HashMap::with_capacity(exprs.len());
        let asked = exprs.clone();
        let mut arriving = futures::stream::iter(exprs)
            .map(|expr| async move {
                let answer = self.query(&expr, at_ms).await;
                (expr, answer)
            })
            .buffer_unordered(CONCURRENT_QUERIES);
        let _ = tokio::time::timeout(budget, async {
            while let Some((expr, answer)) = arriving.next().await {
                answers.insert(expr, answer);
            }
        })
        .await;
        for expr in asked {
            answers.entry(expr).or_insert_with(|| {
                Err(EvalError(format!(
                    "datasource {}: no answer within the evaluation interval ({} s)",
                    self.url,
                    budget.as_secs_f64()
                )))
            });
        }
        RemoteAnswers { at_ms, answers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_as_prometheus_writes_them() {
        let v = parse_answer(br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1.5,"0.25"]},{"metric":{},"value":[1.5,"+Inf"]}]}}"#).unwrap();
        assert_eq!(v[0].0["job"], "a");
        assert_eq!(v[0].1, 0.25);
        assert!(v[1].1.is_infinite());
        let s = parse_answer(
            br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"7"]}}"#,
        )
        .unwrap();
        assert_eq!(s, vec![(Labels::new(), 7.0)]);
        let e = parse_answer(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#)
            .unwrap_err();
        assert_eq!(e.0, "datasource: parse error");
        assert!(parse_answer(
            br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#
        )
        .is_err());
    }

    #[tokio::test]
    async fn a_datasource_slower_than_the_interval_gets_an_error_in_time() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let config: DatasourceConfig = serde_json::from_value(serde_json::json!({
            "type": "prometheus", "url": format!("http://{address}/"), "timeout_seconds": 60
        }))
        .unwrap();
        let datasource = RemoteDatasource::new(&config).unwrap();
        let answers = datasource
            .query_all(
                vec!["up".into(), "vector(1)".into()],
                0,
                std::time::Duration::from_millis(300),
            )
            .await;
        assert_eq!(answers.answers.len(), 2);
        for answer in answers.answers.values() {
            let e = answer.as_ref().unwrap_err();
            assert!(
                e.0.contains("no answer within the evaluation interval"),
                "{e}"
            );
        }
        held.abort();
    }
}
