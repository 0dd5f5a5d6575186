//! What the store cannot hold, found before an event is accepted: a NUL character (PostgreSQL's
//! `text` and `jsonb` refuse it), a number past its column's range, an `attempt` of 0, a
//! `replay_of` that is not an earlier attempt. Checked at the edge (ingest, the run API) so that
//! one client's bad event is refused with a reason instead of failing a flush it shares with
//! other clients' events.

use app::models::EventBody;
use serde_json::Value;

/// Largest value of an `INTEGER` column.
const INT4_MAX: u64 = i32::MAX as u64;
/// Largest value of a `BIGINT` column.
const INT8_MAX: u64 = i64::MAX as u64;
/// Costs are `NUMERIC(14, 6)`: eight digits before the point.
const COST_LIMIT: f64 = 1e8;

/// Why an event cannot be stored, and where in it (a path such as `data.inputs.topic`).
#[derive(Debug, Clone, PartialEq)]
pub struct Unstorable {
    pub path: String,
    pub message: String,
}

impl Unstorable {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Checks one event. `may_hold_nul` is a hint: pass `false` only when the event's JSON text is
/// known to hold no `\u0000` escape (JSON carries a NUL no other way), which spares walking
/// every string of every event.
pub fn check(body: &EventBody, may_hold_nul: bool) -> Result<(), Unstorable> {
    check_numbers(body)?;
    if may_hold_nul {
        if let Ok(value) = serde_json::to_value(body) {
            if let Some(data) = value.get("data") {
                find_nul(data, "data")?;
            }
        }
    }
    Ok(())
}

/// A JSON value a client gave (run inputs, env values) checked for NUL characters.
pub fn check_value(value: &Value, path: &str) -> Result<(), Unstorable> {
    find_nul(value, path)
}

fn find_nul(value: &Value, path: &str) -> Result<(), Unstorable> {
    const NUL: &str = "contains a NUL character (\\u0000), which cannot be stored; remove it or replace it (e.g. with U+FFFD)";
    match value {
        Value::String(text) if text.contains('\0') => {
            Err(Unstorable::new(path, format!("the text {NUL}")))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| find_nul(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let path = format!("{path}.{key}");
            if key.contains('\0') {
                Err(Unstorable::new(path, format!("the key {NUL}")))
            } else {
                find_nul(item, &path)
            }
        }),
        _ => Ok(()),
    }
}

fn int4(path: &str, n: impl Into<u64>) -> Result<(), Unstorable> {
    let n = n.into();
    if n > INT4_MAX {
        return Err(Unstorable::new(
            path,
            format!("{n} is too large; at most {INT4_MAX} is stored"),
        ));
    }
    Ok(())
}

fn int8(path: &str, n: u64) -> Result<(), Unstorable> {
    if n > INT8_MAX {
        return Err(Unstorable::new(
            path,
            format!("{n} is too large; at most {INT8_MAX} is stored"),
        ));
    }
    Ok(())
}

fn cost(path: &str, usd: f64) -> Result<(), Unstorable> {
    if !usd.is_finite() || !(0.0..COST_LIMIT).contains(&usd) {
        return Err(Unstorable::new(
            path,
            format!(
                "{usd} is out of range; a cost is a number of USD from 0 to less than 100,000,000"
            ),
        ));
    }
    Ok(())
}

fn check_numbers(body: &EventBody) -> Result<(), Unstorable> {
    match body {
        EventBody::PipelineStarted(e) => e.version.map_or(Ok(()), |v| int4("data.version", v)),
        EventBody::PipelineCompleted(e) => {
            int8("data.totals.tokens", e.totals.tokens)?;
            int8("data.totals.duration_ms", e.totals.duration_ms)?;
            cost("data.totals.cost_usd", e.totals.cost_usd)
        }
        EventBody::StepStarted(e) => {
            if e.attempt == 0 {
                return Err(Unstorable::new(
                    "data.attempt",
                    "attempts are numbered from 1",
                ));
            }
            int4("data.attempt", e.attempt)?;
            if let Some(budget) = e.token_budget {
                int4("data.token_budget", budget)?;
            }
            match e.replay_of {
                Some(of) if of == 0 || of >= e.attempt => Err(Unstorable::new(
                    "data.replay_of",
                    format!(
                        "replay_of must name an earlier attempt of the step (1 to {})",
                        e.attempt - 1
                    ),
                )),
                _ => Ok(()),
            }
        }
        EventBody::PromptSent(e) => int4("data.token_count", e.token_count),
        EventBody::ResponseReceived(e) => {
            int4("data.usage.prompt_tokens", e.usage.prompt_tokens)?;
            int4("data.usage.completion_tokens", e.usage.completion_tokens)?;
            int4("data.usage.total_tokens", e.usage.total_tokens)?;
            e.ttft_ms.map_or(Ok(()), |ms| int4("data.ttft_ms", ms))
        }
        EventBody::StepCompleted(e) => {
            int8("data.duration_ms", e.duration_ms)?;
            int4("data.tokens", e.tokens)?;
            cost("data.cost_usd", e.cost_usd)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> EventBody {
        serde_json::from_str(json).expect("valid event")
    }

    #[test]
    fn nul_in_a_nested_value_or_key_is_located() {
        let started = event(
            r#"{"event":"pipeline:started","data":{"execution_id":"0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11",
                "pipeline":"p","inputs":{"topic":"a\u0000b","list":["x"]},"started_at":"2026-11-25T02:00:00Z"}}"#,
        );
        let refused = check(&started, true).expect_err("refused");
        assert_eq!(refused.path, "data.inputs.topic");
        assert!(refused.message.contains("NUL"));

        let key = event(
            r#"{"event":"pipeline:started","data":{"execution_id":"0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11",
                "pipeline":"p","inputs":{"ok":[1,{"k\u0000":1}]},"started_at":"2026-11-25T02:00:00Z"}}"#,
        );
        assert_eq!(
            check(&key, true).expect_err("refused").path,
            "data.inputs.ok[1].k\0"
        );
        // The hint says the text holds no NUL escape: numbers are still checked, strings not.
        assert!(check(&key, false).is_ok());
    }

    #[test]
    fn numbers_past_their_column_and_bad_attempts_are_refused() {
        let step = |attempt: u64, replay: &str| {
            event(&format!(
                r#"{{"event":"step:started","data":{{"execution_id":"0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11",
                    "step":"s","provider":"p","model":"m","attempt":{attempt}{replay}}}}}"#
            ))
        };
        assert_eq!(
            check(&step(0, ""), false).expect_err("refused").path,
            "data.attempt"
        );
        assert_eq!(
            check(&step(2_147_483_648, ""), false)
                .expect_err("refused")
                .path,
            "data.attempt"
        );
        assert!(check(&step(2_147_483_647, ""), false).is_ok());
        assert_eq!(
            check(&step(2, r#","replay_of":2"#), false)
                .expect_err("refused")
                .path,
            "data.replay_of"
        );
        assert!(check(&step(2, r#","replay_of":1"#), false).is_ok());

        let completed = |cost: &str| {
            event(&format!(
                r#"{{"event":"step:completed","data":{{"execution_id":"0b9e4a52-3b7e-4d53-9a53-4c1f1f2a0c11",
                    "step":"s","duration_ms":5,"tokens":1,"cost_usd":{cost},"status":"completed"}}}}"#
            ))
        };
        assert_eq!(
            check(&completed("1e8"), false).expect_err("refused").path,
            "data.cost_usd"
        );
        assert_eq!(
            check(&completed("-1"), false).expect_err("refused").path,
            "data.cost_usd"
        );
        assert!(check(&completed("99999999.99"), false).is_ok());
    }
}
