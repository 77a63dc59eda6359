//! Duty: remove the temp directories of attempts no worker runs any more
//! (a worker killed mid-job leaves its sheet data behind). Tested here and
//! by `tests/tests/lifecycle.rs`.

use std::path::Path;

use ordersum_model::store;
use uuid::Uuid;

use crate::context::JobContext;
use crate::export::TEMP_PREFIX;

/// Directories removed.
pub async fn run(ctx: &JobContext) -> Result<usize, anyhow::Error> {
    let dir = ctx.settings.temp_dir();
    let mut removed = 0;
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return Ok(0);
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(job_id) = temp_dir_job(&name) else {
            continue;
        };
        if !store::maintenance::job_is_live(&ctx.pool, job_id, ctx.settings.stale_after()).await? {
            remove(&entry.path()).await;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The job of a temp directory name `ordersum-job-<uuid>-<random>`.
fn temp_dir_job(name: &str) -> Option<Uuid> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    Uuid::parse_str(rest.get(..36)?).ok()
}

async fn remove(path: &Path) {
    if let Err(err) = tokio::fs::remove_dir_all(path).await {
        tracing::warn!(error = %err, path = %path.display(), "could not remove a stray temp dir");
    } else {
        tracing::info!(path = %path.display(), "stray temp dir removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_name_their_job() {
        let id = Uuid::new_v4();
        assert_eq!(temp_dir_job(&format!("ordersum-job-{id}-x8Yz")), Some(id));
        assert_eq!(temp_dir_job("ordersum-job-nope"), None);
        assert_eq!(temp_dir_job(".tmpXYZ"), None);
    }
}
