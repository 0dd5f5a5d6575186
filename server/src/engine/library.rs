//! Pipeline definitions: every saved text is a version in `pipeline_definitions`; a run names
//! the version it used. The `pipelines/` folder is loaded at start-up (a changed file becomes a
//! new version). A run started from YAML through the API uses the saved version with that text,
//! saves a new pipeline as its first version, and saves a changed text of a saved pipeline only
//! when asked to (`save`), so it never silently becomes what runs by name use. The studio
//! saves through [`save_edited`]: only on top of the version its editor opened, and as a draft
//! (stored, never run) when the text has problems on purpose.

use std::path::Path;

use app::models::{LastRun, PipelineListing, PipelineText, PipelineVersion, SaveOutcome};
use pipeline::{Catalog, Pipeline};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Row};

use super::EngineError;

/// A saved, valid pipeline.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub version: u32,
    pub yaml: String,
    pub pipeline: Pipeline,
}

impl Definition {
    fn new(pipeline: Pipeline, yaml: &str, version: i32) -> Self {
        Self {
            name: pipeline.name.clone(),
            version: u32::try_from(version).unwrap_or_default(),
            yaml: yaml.to_owned(),
            pipeline,
        }
    }
}

/// How a request names a pipeline.
#[derive(Debug, Clone)]
pub enum PipelineRef {
    Named {
        name: String,
        version: Option<u32>,
    },
    /// The text itself; `save`: store it as the pipeline's next version when it is new.
    Yaml {
        yaml: String,
        save: bool,
    },
}

/// One line of the pipeline list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DefinitionSummary {
    pub name: String,
    pub version: u32,
    pub description: Option<String>,
    pub source: String,
    /// Step names in run order; empty when the text no longer validates here.
    pub steps: Vec<String>,
    /// Problems with the saved text on this server (e.g. a provider since removed).
    pub problems: usize,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Loads or saves what `reference` names, validated against `catalog`.
pub async fn resolve(
    pool: &PgPool,
    reference: &PipelineRef,
    catalog: &Catalog,
) -> Result<Definition, EngineError> {
    match reference {
        PipelineRef::Yaml { yaml, save } => {
            store(pool, yaml, catalog, Arrival::Run { save: *save }).await
        }
        PipelineRef::Named { name, version } => {
            let row = match version {
                Some(version) => {
                    sqlx::query(
                        "SELECT version, yaml, draft FROM pipeline_definitions
                         WHERE name = $1 AND version = $2",
                    )
                    .bind(name)
                    .bind(i32::try_from(*version).unwrap_or(i32::MAX))
                    .fetch_optional(pool)
                    .await?
                }
                // The newest version that may run: drafts are skipped.
                None => {
                    sqlx::query(
                        "SELECT version, yaml, draft FROM pipeline_definitions
                         WHERE name = $1 AND NOT draft ORDER BY version DESC LIMIT 1",
                    )
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
                }
            };
            let Some(row) = row else {
                if version.is_none() && exists(pool, name).await? {
                    return Err(EngineError::Conflict(format!(
                        "every saved version of `{name}` is a draft, and drafts do not run; fix \
                         its problems and save it (not as a draft)"
                    )));
                }
                let known = names(pool).await?;
                return Err(EngineError::NotFound(match version {
                    Some(v) => format!("pipeline `{name}` has no version {v}"),
                    None if known.is_empty() => {
                        format!("no pipeline named `{name}`; none are saved yet")
                    }
                    None => format!(
                        "no pipeline named `{name}`; saved pipelines: {}",
                        known.join(", ")
                    ),
                }));
            };
            if row.get::<bool, _>("draft") {
                return Err(EngineError::Conflict(format!(
                    "version {} of `{name}` is a draft (saved with problems) and does not run; \
                     fix its problems and save it (not as a draft), or run a version that is \
                     not a draft",
                    row.get::<i32, _>("version")
                )));
            }
            let yaml: String = row.get("yaml");
            let version: i32 = row.get("version");
            // Saved text was valid when saved; providers may since have been removed.
            let pipeline =
                pipeline::validate(yaml.as_bytes(), catalog).map_err(EngineError::Invalid)?;
            Ok(Definition::new(pipeline, &yaml, version))
        }
    }
}

/// Where a text to store comes from, which decides when it becomes a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The pipelines folder at start-up: stored when the file changed since it was last
    /// loaded, so versions saved in the studio since then stay the newest.
    File,
    /// A run from YAML (the run API): the newest runnable version with exactly this text runs;
    /// a name not saved yet is saved as its first version; a changed text of a saved pipeline
    /// is saved as its next version only with `save`, else refused with a Conflict that says
    /// how to run it.
    Run { save: bool },
}

/// Validates `yaml` and finds or stores its version as `arrival` says.
pub async fn store(
    pool: &PgPool,
    yaml: &str,
    catalog: &Catalog,
    arrival: Arrival,
) -> Result<Definition, EngineError> {
    let pipeline = pipeline::validate(yaml.as_bytes(), catalog).map_err(EngineError::Invalid)?;
    let mut tx = pool.begin().await?;
    let latest = lock_latest(&mut tx, &pipeline.name).await?;
    let same: Option<i32> = match arrival {
        Arrival::File => {
            let last_loaded: Option<(i32, String)> = sqlx::query_as(
                "SELECT version, yaml FROM pipeline_definitions WHERE name = $1 AND source = 'file'
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(&pipeline.name)
            .fetch_optional(&mut *tx)
            .await?;
            match (&latest, last_loaded) {
                (_, Some((loaded, text))) if text == yaml => Some(loaded),
                (Some(latest), _) if latest.yaml == yaml && !latest.draft => Some(latest.version),
                _ => None,
            }
        }
        Arrival::Run { .. } => {
            sqlx::query_scalar(
                "SELECT version FROM pipeline_definitions WHERE name = $1 AND yaml = $2
                 AND NOT draft ORDER BY version DESC LIMIT 1",
            )
            .bind(&pipeline.name)
            .bind(yaml)
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    let next = latest.as_ref().map_or(1, |l| l.version + 1);
    let version = match (same, latest, arrival) {
        (Some(version), _, _) => version,
        (None, Some(latest), Arrival::Run { save: false }) => {
            return Err(EngineError::Conflict(format!(
                "`{}` is saved already with another text (its newest version is {}); a run \
                 from `yaml` does not replace a saved pipeline: run the saved one with \
                 `pipeline`, add `\"save\": true` to save this text as version {next} and run \
                 it, or give the pipeline another `name`",
                pipeline.name, latest.version
            )))
        }
        (None, _, _) => {
            let source = match arrival {
                Arrival::File => "file",
                Arrival::Run { .. } => "api",
            };
            NewVersion::runnable(&pipeline, yaml, source, next)
                .insert(&mut tx)
                .await?;
            next
        }
    };
    tx.commit().await?;
    Ok(Definition::new(pipeline, yaml, version))
}

/// The newest stored version of a pipeline, as a save sees it.
struct Latest {
    version: i32,
    yaml: String,
    draft: bool,
}

/// Takes the pipeline's save lock for the rest of `tx` and reads its newest version. Saves and
/// deletes of one name are serialised by the lock, so two of them cannot pick the same version
/// number or both pass a check of the newest version.
async fn lock_latest(tx: &mut PgConnection, name: &str) -> Result<Option<Latest>, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT version, yaml, draft FROM pipeline_definitions WHERE name = $1
         ORDER BY version DESC LIMIT 1",
    )
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|row| Latest {
        version: row.get("version"),
        yaml: row.get("yaml"),
        draft: row.get("draft"),
    }))
}

/// One row of `pipeline_definitions` to insert.
struct NewVersion<'a> {
    name: &'a str,
    version: i32,
    description: Option<&'a str>,
    yaml: &'a str,
    source: &'a str,
    note: &'a str,
    draft: bool,
}

impl<'a> NewVersion<'a> {
    /// A valid text saved with no note: it may run.
    fn runnable(pipeline: &'a Pipeline, yaml: &'a str, source: &'a str, version: i32) -> Self {
        Self {
            name: &pipeline.name,
            version,
            description: pipeline.description.as_deref(),
            yaml,
            source,
            note: "",
            draft: false,
        }
    }

    async fn insert(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pipeline_definitions (name, version, description, yaml, source, note, draft)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.name)
        .bind(self.version)
        .bind(self.description)
        .bind(self.yaml)
        .bind(self.source)
        .bind(self.note)
        .bind(self.draft)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// A save from the studio's editor: what it edited and what the author asks for.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    pub yaml: &'a str,
    /// The version the editor opened; None for a new pipeline.
    pub base: Option<u32>,
    pub note: &'a str,
    /// Store it even with problems, as a draft that does not run.
    pub draft: bool,
}

/// Stores an edited text as the next version of the pipeline its `name:` names, if `edit.base`
/// is still that pipeline's newest version (otherwise nothing is stored and the newest comes
/// back as the conflict), and, unless it is a draft, if it has no problems. Saving the newest
/// version's own text again (as a draft again, or not again) stores nothing and answers with it.
pub async fn save_edited(
    pool: &PgPool,
    edit: Edit<'_>,
    checked: &pipeline::Checked,
) -> Result<SaveOutcome, EngineError> {
    // A draft is stored as typed, and PostgreSQL's text cannot hold a NUL.
    if edit.yaml.contains('\0') || edit.note.contains('\0') {
        return Err(EngineError::BadRequest(
            "the text or note contains a NUL character (U+0000), which cannot be stored; remove it"
                .to_owned(),
        ));
    }
    let problems = checked.result.as_ref().err().map(|d| problems(d));
    let name = match (&checked.outline.name, problems) {
        (Some(name), None) => name,
        (Some(name), Some(_)) if edit.draft => name,
        (None, Some(mut problems)) if edit.draft => {
            // The validator's problems say what is wrong with the name (unless a parse error
            // stopped it first); this says why a draft cannot do without one.
            problems.push(app::models::Problem {
                line: 1,
                column: 1,
                message: "a draft is saved under the text's `name:`, which is missing or not \
                          valid (letters, digits, `-` and `_`); fix the name to save"
                    .to_owned(),
                suggestion: None,
            });
            return Ok(SaveOutcome::Invalid { problems });
        }
        (_, problems) => {
            return Ok(SaveOutcome::Invalid {
                problems: problems.unwrap_or_default(),
            })
        }
    };
    let mut tx = pool.begin().await?;
    let latest = lock_latest(&mut tx, name).await?;
    let newest = latest
        .as_ref()
        .map(|l| u32::try_from(l.version).unwrap_or_default());
    if newest != edit.base {
        if latest.is_none() {
            return Err(EngineError::Conflict(format!(
                "no pipeline named `{name}` is saved (it was deleted, or the text's `name:` was \
                 changed since version {} was opened); save it as a new pipeline",
                edit.base.unwrap_or_default()
            )));
        }
        let theirs = open_on(&mut tx, name, None).await?;
        return match theirs {
            Some(theirs) => Ok(SaveOutcome::Conflict { theirs }),
            None => Err(EngineError::NotFound(format!("no pipeline named `{name}`"))),
        };
    }
    if let Some(latest) = latest
        .as_ref()
        .filter(|l| l.yaml == edit.yaml && l.draft == edit.draft)
    {
        return Ok(SaveOutcome::Saved {
            version: u32::try_from(latest.version).unwrap_or_default(),
        });
    }
    let next = latest.map_or(1, |l| l.version + 1);
    let description = match &checked.result {
        Ok(pipeline) => pipeline.description.as_deref(),
        Err(_) => checked.outline.description.as_deref(),
    };
    NewVersion {
        name,
        version: next,
        description,
        yaml: edit.yaml,
        source: "browser",
        note: edit.note,
        draft: edit.draft,
    }
    .insert(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(SaveOutcome::Saved {
        version: u32::try_from(next).unwrap_or_default(),
    })
}

/// The validator's diagnostics as the studio shows them.
pub fn problems(diagnostics: &[pipeline::Diagnostic]) -> Vec<app::models::Problem> {
    diagnostics
        .iter()
        .map(|d| app::models::Problem {
            line: d.line,
            column: d.column,
            message: d.message.clone(),
            suggestion: d.suggestion.clone(),
        })
        .collect()
}

/// A pipeline's text (the newest version, drafts included, unless `version` is given) and its
/// history, newest first; None when there is no such pipeline or version.
pub async fn open(
    pool: &PgPool,
    name: &str,
    version: Option<u32>,
) -> Result<Option<PipelineText>, sqlx::Error> {
    open_on(&mut *pool.acquire().await?, name, version).await
}

async fn open_on(
    connection: &mut PgConnection,
    name: &str,
    version: Option<u32>,
) -> Result<Option<PipelineText>, sqlx::Error> {
    let versions: Vec<PipelineVersion> = sqlx::query_as(
        "SELECT version, note, draft, created_at AS saved_at FROM pipeline_definitions
         WHERE name = $1 ORDER BY version DESC",
    )
    .bind(name)
    .fetch_all(&mut *connection)
    .await?;
    let Some(chosen) = version.or(versions.first().map(|v| v.version)) else {
        return Ok(None);
    };
    let Some(draft) = versions
        .iter()
        .find(|v| v.version == chosen)
        .map(|v| v.draft)
    else {
        return Ok(None);
    };
    let yaml: String = sqlx::query_scalar(
        "SELECT yaml FROM pipeline_definitions WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(i32::try_from(chosen).unwrap_or(i32::MAX))
    .fetch_one(&mut *connection)
    .await?;
    Ok(Some(PipelineText {
        name: name.to_owned(),
        version: chosen,
        draft,
        yaml,
        versions,
    }))
}

/// Deletes every version of a pipeline; false when there was none. Its runs stay: executions
/// name their pipeline and version, they do not refer to the definition rows.
pub async fn delete(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Under the save lock: a save that started before cannot add a version after this.
    lock_latest(&mut tx, name).await?;
    let deleted = sqlx::query("DELETE FROM pipeline_definitions WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted > 0)
}

/// The studio's list: per pipeline its newest version (drafts included), the newest runnable
/// version's text (for its step count), its newest run, and its runs since midnight UTC with
/// their cost. One statement; each pipeline's runs are reached through
/// `pipeline_executions_by_pipeline` (pipeline_name, started_at DESC), so its cost follows the
/// number of pipelines and of today's runs, not the history. A run's cost is what its steps
/// have cost so far while it runs (the run's own total is written when it completes), as on
/// the dashboard.
pub const LISTING: &str = "
    WITH latest AS (
        SELECT DISTINCT ON (name) name, version, draft, description, created_at
        FROM pipeline_definitions ORDER BY name, version DESC
    ), runnable AS (
        SELECT DISTINCT ON (name) name, yaml
        FROM pipeline_definitions WHERE NOT draft ORDER BY name, version DESC
    )
    SELECT l.name, l.version, l.draft, l.description, l.created_at, r.yaml,
           last_run.id AS last_id, last_run.status AS last_status,
           last_run.started_at AS last_started_at,
           today.runs, today.cost_usd
    FROM latest l
    LEFT JOIN runnable r USING (name)
    LEFT JOIN LATERAL (
        SELECT e.id, e.status, e.started_at FROM pipeline_executions e
        WHERE e.pipeline_name = l.name ORDER BY e.started_at DESC LIMIT 1
    ) last_run ON TRUE
    CROSS JOIN LATERAL (
        SELECT count(*) AS runs,
               COALESCE(sum(GREATEST(e.cost_usd,
                   (SELECT COALESCE(sum(s.cost_usd), 0) FROM step_executions s
                     WHERE s.execution_id = e.id))), 0)::float8 AS cost_usd
        FROM pipeline_executions e
        WHERE e.pipeline_name = l.name AND e.started_at >= date_trunc('day', now(), 'UTC')
    ) today
    ORDER BY l.name";

/// Every saved pipeline for the studio's list (see [`LISTING`]).
pub async fn listing(
    pool: &PgPool,
    catalog: &Catalog,
) -> Result<Vec<PipelineListing>, sqlx::Error> {
    let rows = sqlx::query(LISTING).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let yaml: Option<String> = row.get("yaml");
            // Saved valid; it may not validate any more (a provider since removed): 0 steps.
            let steps = yaml
                .and_then(|yaml| pipeline::validate(yaml.as_bytes(), catalog).ok())
                .map_or(0, |p| u32::try_from(p.steps.len()).unwrap_or(u32::MAX));
            let last_run = match row.get::<Option<uuid::Uuid>, _>("last_id") {
                Some(id) => Some(LastRun {
                    id,
                    status: row
                        .get::<String, _>("last_status")
                        .parse()
                        .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
                    started_at: row.get("last_started_at"),
                }),
                None => None,
            };
            Ok(PipelineListing {
                name: row.get("name"),
                description: row.get("description"),
                version: u32::try_from(row.get::<i32, _>("version")).unwrap_or_default(),
                draft: row.get("draft"),
                steps,
                saved_at: row.get("created_at"),
                last_run,
                runs_today: u32::try_from(row.get::<i64, _>("runs")).unwrap_or(u32::MAX),
                cost_today_usd: row.get("cost_usd"),
            })
        })
        .collect()
}

async fn exists(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pipeline_definitions WHERE name = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
}

async fn names(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT name FROM pipeline_definitions ORDER BY name")
        .fetch_all(pool)
        .await
}

/// The latest version of every saved pipeline.
pub async fn list(pool: &PgPool, catalog: &Catalog) -> Result<Vec<DefinitionSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT ON (name) name, version, description, source, yaml, created_at
         FROM pipeline_definitions ORDER BY name, version DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let yaml: String = row.get("yaml");
            let checked = pipeline::validate(yaml.as_bytes(), catalog);
            DefinitionSummary {
                name: row.get("name"),
                version: u32::try_from(row.get::<i32, _>("version")).unwrap_or_default(),
                description: row.get("description"),
                source: row.get("source"),
                steps: checked
                    .as_ref()
                    .map(|p| p.steps.iter().map(|s| s.name.clone()).collect())
                    .unwrap_or_default(),
                problems: checked.err().map_or(0, |d| d.len()),
                created_at: row.get("created_at"),
            }
        })
        .collect())
}

/// What start-up made of the pipelines folder.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<Definition>,
    /// File name and the problems in it, one per line.
    pub rejected: Vec<(String, String)>,
}

/// Validates and saves every `*.yaml` / `*.yml` file of `dir`. An invalid file is reported
/// with its problems (file:line:column) and skipped; the others still load.
pub async fn load_dir(
    pool: &PgPool,
    dir: &Path,
    catalog: &Catalog,
) -> Result<LoadReport, sqlx::Error> {
    let mut report = LoadReport::default();
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect(),
        Err(error) => {
            report.rejected.push((
                dir.display().to_string(),
                format!("cannot read the folder: {error}"),
            ));
            return Ok(report);
        }
    };
    files.sort();
    for path in files {
        let file = path.display().to_string();
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                report
                    .rejected
                    .push((file, format!("cannot read: {error}")));
                continue;
            }
        };
        if let Err(diagnostics) = pipeline::validate(&text, catalog) {
            let problems = diagnostics
                .iter()
                .map(|d| format!("{file}:{d}"))
                .collect::<Vec<_>>()
                .join("\n");
            report.rejected.push((file, problems));
            continue;
        }
        // Valid UTF-8 is implied by a successful validation.
        let yaml = String::from_utf8_lossy(&text);
        match store(pool, &yaml, catalog, Arrival::File).await {
            Ok(definition) => report.loaded.push(definition),
            Err(EngineError::Store(error)) => return Err(error),
            Err(other) => report.rejected.push((file, other.to_string())),
        }
    }
    Ok(report)
}
