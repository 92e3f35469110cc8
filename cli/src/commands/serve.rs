//! `asof serve`: the SQL of `asof sql` over the PostgreSQL wire protocol.

use std::path::Path;

use anyhow::{Context, Result};
use asof_serve::{Access, Config, Server};
use asof_sql::Typing;

use crate::args::ServeArgs;
use crate::commands::tail::wait_for_signal;
use crate::UsageError;

/// Where the password comes from when no file is given.
const PASSWORD_ENV: &str = "ASOF_SERVE_PASSWORD";

pub fn run(store_path: &Path, a: ServeArgs) -> Result<()> {
    let access = match &a.user {
        Some(user) => Access::Password {
            user: user.clone(),
            password: password(&a)?,
        },
        None => Access::Trust { anywhere: a.trust },
    };
    let config = Config {
        store: store_path.to_path_buf(),
        listen: a.listen.clone(),
        access,
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        typing: if a.typing.text { Typing::Text } else { Typing::Typed },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config).await?;
        // One write for the whole line: stderr is unbuffered, and a tool
        // watching for this line must never see it cut after part of the
        // address.
        let line = format!("listening on {}\n", server.local_addr()?);
        eprint!("{line}");
        server.run(wait_for_signal()).await?;
        eprintln!("stopped");
        Ok(())
    })
}

/// The password: the first line of --password-file, or the environment.
fn password(a: &ServeArgs) -> Result<String> {
    match &a.password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(text.lines().next().unwrap_or_default().to_string())
        }
        None => std::env::var(PASSWORD_ENV).map_err(|_| {
            UsageError(format!(
                "--user needs a password: --password-file FILE or {PASSWORD_ENV}"
            ))
            .into()
        }),
    }
}
