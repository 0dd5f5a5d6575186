//! Pipeline definitions: every saved text is a version in `pipeline_definitions`; a run names
//! the version it used. The `pipelines/` folder is loaded at start-up (a changed file becomes a
//! new version); pipelines started from YAML through the API are saved the same way.

use std::path::Path;

use pipeline::{Catalog, Pipeline};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

use super::EngineError;

/// A saved, valid pipeline.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub version: u32,
    pub yaml: String,
    pub pipeline: Pipeline,
}

/// How a request names a pipeline.
#[derive(Debug, Clone)]
pub enum PipelineRef {
    Named { name: String, version: Option<u32> },
    Yaml(String),
}

/// One line of the pipeline list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    source: &str,
) -> Result<Definition, EngineError> {
    match reference {
        PipelineRef::Yaml(yaml) => save(pool, yaml, catalog, source).await,
        PipelineRef::Named { name, version } => {
            let row = match version {
                Some(version) => {
                    sqlx::query(
                        "SELECT version, yaml FROM pipeline_definitions WHERE name = $1 AND version = $2",
                    )
                    .bind(name)
                    .bind(i32::try_from(*version).unwrap_or(i32::MAX))
                    .fetch_optional(pool)
                    .await?
                }
                None => {
                    sqlx::query(
                        "SELECT version, yaml FROM pipeline_definitions WHERE name = $1
                         ORDER BY version DESC LIMIT 1",
                    )
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
                }
            };
            let Some(row) = row else {
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
            let yaml: String = row.get("yaml");
            let version: i32 = row.get("version");
            // Saved text was valid when saved; providers may since have been removed.
            let pipeline =
                pipeline::validate(yaml.as_bytes(), catalog).map_err(EngineError::Invalid)?;
            Ok(Definition {
                name: pipeline.name.clone(),
                version: u32::try_from(version).unwrap_or_default(),
                yaml,
                pipeline,
            })
        }
    }
}

/// Validates `yaml` and stores it as the next version of its pipeline, unless it is the same
/// text as the latest version.
pub async fn save(
    pool: &PgPool,
    yaml: &str,
    catalog: &Catalog,
    source: &str,
) -> Result<Definition, EngineError> {
    let pipeline = pipeline::validate(yaml.as_bytes(), catalog).map_err(EngineError::Invalid)?;
    let mut tx = pool.begin().await?;
    // Two saves of the same pipeline at once must not pick the same version number.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&pipeline.name)
        .execute(&mut *tx)
        .await?;
    let latest = sqlx::query(
        "SELECT version, yaml FROM pipeline_definitions WHERE name = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(&pipeline.name)
    .fetch_optional(&mut *tx)
    .await?;
    let version = match latest {
        Some(row) if row.get::<String, _>("yaml") == yaml => row.get::<i32, _>("version"),
        latest => {
            let next = latest.map_or(1, |row| row.get::<i32, _>("version") + 1);
            sqlx::query(
                "INSERT INTO pipeline_definitions (name, version, description, yaml, source)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&pipeline.name)
            .bind(next)
            .bind(&pipeline.description)
            .bind(yaml)
            .bind(source)
            .execute(&mut *tx)
            .await?;
            next
        }
    };
    tx.commit().await?;
    Ok(Definition {
        name: pipeline.name.clone(),
        version: u32::try_from(version).unwrap_or_default(),
        yaml: yaml.to_owned(),
        pipeline,
    })
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
        match save(pool, &yaml, catalog, "file").await {
            Ok(definition) => report.loaded.push(definition),
            Err(EngineError::Store(error)) => return Err(error),
            Err(other) => report.rejected.push((file, other.to_string())),
        }
    }
    Ok(report)
}
