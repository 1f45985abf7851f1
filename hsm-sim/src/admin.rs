//! The admin endpoint: plain JSON over the same port, under `/admin/`.
//!
//! | request                   | does                                                        |
//! |---------------------------|-------------------------------------------------------------|
//! | `GET /admin/health`       | `{"status":"ok"}`                                           |
//! | `GET /admin/faults`       | the faults in force, burst left and outage seconds left     |
//! | `POST /admin/faults`      | replace them with a [`FaultConfig`] (`{}` clears all)       |
//! | `GET /admin/stats`        | the counters ([`crate::Stats`])                             |
//! | `POST /admin/stats/reset` | zero the counters                                           |
//! | `POST /admin/keys`        | `{"alias":"alias/x"}` (optional): create a key, out of band |

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultConfig;
use crate::server::{Shared, create_key, json_response, lock};
use crate::{Error, Stats};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct NewKey {
    alias: Option<String>,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

fn bad_request(errors: Vec<String>) -> Response<Full<Bytes>> {
    json_response(StatusCode::BAD_REQUEST, &json!({ "errors": errors }))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

pub(crate) fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let ok = |v: Value| json_response(StatusCode::OK, &v);
    match (method, path.trim_end_matches('/')) {
        (&Method::GET, "/admin/health") => ok(json!({ "status": "ok" })),
        (&Method::GET, "/admin/faults") => ok(to_json(&lock(&shared.faults).status())),
        (&Method::POST, "/admin/faults") => match parse_body::<FaultConfig>(body) {
            Err(e) => bad_request(vec![e]),
            Ok(config) => {
                let mut faults = lock(&shared.faults);
                match faults.set(config) {
                    Ok(()) => {
                        let status = faults.status();
                        tracing::info!(faults = ?status.config, "faults set");
                        ok(to_json(&status))
                    }
                    Err(problems) => bad_request(problems),
                }
            }
        },
        (&Method::GET, "/admin/stats") => ok(to_json(&*lock(&shared.stats))),
        (&Method::POST, "/admin/stats/reset") => {
            *lock(&shared.stats) = Stats::default();
            ok(to_json(&Stats::default()))
        }
        (&Method::POST, "/admin/keys") => match parse_body::<NewKey>(body) {
            Err(e) => bad_request(vec![e]),
            Ok(req) => match create_key(shared, req.alias.as_deref()) {
                Ok(id) => ok(json!({ "KeyId": id, "Alias": req.alias })),
                Err(Error::Kms(e)) => bad_request(vec![e.to_string()]),
                Err(e) => bad_request(vec![e.to_string()]),
            },
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({
                "error": format!("no admin endpoint {method} {path}"),
                "endpoints": [
                    "GET /admin/health",
                    "GET /admin/faults",
                    "POST /admin/faults",
                    "GET /admin/stats",
                    "POST /admin/stats/reset",
                    "POST /admin/keys",
                ],
            }),
        ),
    }
}
