//! Step 3, last fault: `cargo xtask down` then `cargo xtask deploy`, run through the commands'
//! own code with their default options, and then every account must still sign in and every
//! acknowledged write must still be there. Whatever `down` does with the database volume, the
//! step reports what it observed.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use xshell::Shell;

use super::accounts::{self, Account, patiently};
use super::faults::Observation;
use super::http::{Base, Http};
use super::ledger::{self, Verdict};
use crate::commands::{deploy, down};
use crate::pipeline::Pipeline;

/// What the redeploy observed.
pub(crate) struct Redeployed {
    /// What was seen: the redeploy, the accounts that still sign in, the writes kept.
    pub(crate) observations: Vec<Observation>,
    /// The ledgers checked after the redeploy.
    pub(crate) verdict: Verdict,
    /// The frontend's base URL after the redeploy.
    pub(crate) frontend: String,
    /// The backend's base URL after the redeploy.
    pub(crate) backend: String,
}

/// `down`, `deploy`, then every account signs in and every ledger is checked.
pub(crate) fn run(
    sh: &Shell,
    p: &Pipeline,
    http: &Http,
    accounts: &mut [Account],
    verify_within: Duration,
) -> Result<Redeployed> {
    let started = Instant::now();
    down::run(sh, p, &super::defaults::<down::Args>("down")?)
        .context("`down` during the load suite")?;
    deploy::run(sh, p, &super::defaults::<deploy::Args>("deploy")?)
        .context("`deploy` after `down` during the load suite")?;
    let (frontend, backend) = super::endpoints(sh, p)?;
    let api = Base::new(&backend);
    let mut observations = vec![Observation {
        what: "down + deploy".to_owned(),
        seen: "deployed again".to_owned(),
        seconds: Some(started.elapsed().as_secs_f64()),
        ok: true,
    }];
    let deadline = Instant::now() + verify_within;
    let mut kept = 0;
    for acct in accounts.iter_mut() {
        let a = patiently(deadline, || accounts::login(http, &api, acct));
        kept += usize::from(a.status == Some(200));
    }
    observations.push(Observation {
        what: "down + deploy: accounts sign in".to_owned(),
        seen: format!("{kept} of {} accounts kept", accounts.len()),
        seconds: None,
        ok: kept == accounts.len(),
    });
    let verdict = ledger::verify(http, &api, accounts, verify_within);
    observations.push(Observation {
        what: "down + deploy: tasks".to_owned(),
        seen: format!(
            "{} of {} tasks not as acknowledged (a created task gone, a deleted one back)",
            verdict.lost, verdict.checked
        ),
        seconds: None,
        ok: verdict.clean(),
    });
    Ok(Redeployed {
        observations,
        verdict,
        frontend,
        backend,
    })
}
