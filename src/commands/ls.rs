//! `regcache ls`: every tag of a repository or cache dir, newest first.

use std::io::Write;

use regcache::cli::LsArgs;
use regcache::ops::OpsError;
use regcache::ops::ls::{LsOptions, ls};
use regcache::ops::target::{TargetWords, parse_repo_target};

use super::{Context, Finished, status_of};

pub(crate) async fn cmd_ls(args: LsArgs, ctx: &Context) -> Finished {
    let target = match parse_repo_target(&args.repo, TargetWords::LS) {
        Ok(target) => target,
        Err(err) => return err.into(),
    };
    let report = match ls(&LsOptions {
        target,
        store: ctx.store.clone(),
        now: std::time::SystemTime::now(),
    })
    .await
    {
        Ok(report) => report,
        Err(err) => return err.into(),
    };
    let json = match serde_json::to_value(&report) {
        Ok(json) => json,
        Err(e) => return OpsError::Failed(format!("encoding the listing: {e}")).into(),
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &json)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else {
        write!(stdout, "{}", report.render_table())
    };
    drop(stdout);
    let error = written
        .err()
        .map(|e| OpsError::Failed(format!("writing to stdout: {e}")));
    Finished {
        code: status_of(error.as_ref()),
        summary: (!args.json).then(|| report.summary()),
        metadata: Some(json),
        error,
    }
}
