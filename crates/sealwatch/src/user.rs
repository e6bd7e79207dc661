//! `sealwatch user ...`: the people who sign in to the interface, managed on the store
//! directly, beside a running service or not (docs/security.md, "Authentication").

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;

use crate::EXIT_INVALID;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. A random password is printed once (standard output), unless
    /// --password-stdin reads one (at least 12 characters).
    Create {
        username: String,
        /// The user's role (administrator, supervisor, officer, ...).
        #[arg(long)]
        role: model::Role,
        /// The organisation the user belongs to.
        #[arg(long)]
        organisation: Option<String>,
        /// Read the password from standard input (its first line) instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users (names, roles, organisations, state; never passwords).
    List,
    /// Disable a user: signing in is refused and their sessions end at once.
    Disable { username: String },
    /// Give a user a new password (printed once, or read with --password-stdin); clears the
    /// sign-in lockout.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an administrator's TOTP second factor (a lost phone), so that they can sign in
    /// with the password and enrol again.
    ResetTotp { username: String },
}

/// Why a command failed: bad input (exit 2) or anything else (exit 1).
enum Failure {
    Invalid(String),
    Failed(String),
}

impl From<store::Error> for Failure {
    fn from(e: store::Error) -> Failure {
        if e.is_not_found() || e.is_conflict() {
            Failure::Invalid(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

/// The password to set, and whether it was generated (and so is to be printed).
fn password(from_stdin: bool) -> Result<(String, bool), Failure> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Invalid(format!("password: cannot read standard input: {e}")))?;
        let line = text.lines().next().unwrap_or("").to_owned();
        server::users::check_password(&line).map_err(|e| Failure::Invalid(e.to_string()))?;
        Ok((line, false))
    } else {
        server::users::random_password()
            .map(|p| (p, true))
            .map_err(|e| Failure::Failed(format!("password: no random numbers: {e}")))
    }
}

fn hash(password: &str) -> Result<String, Failure> {
    server::users::hash_password(password).map_err(|e| Failure::Failed(e.to_string()))
}

pub fn run(command: UserCommand, store: &mut dyn store::Store) -> ExitCode {
    let now = server::wall_clock();
    let result = (|| -> Result<(), Failure> {
        match command {
            UserCommand::Create {
                username,
                role,
                organisation,
                password_stdin,
            } => {
                store::check_username(&username).map_err(Failure::Invalid)?;
                let (password, generated) = password(password_stdin)?;
                let user = store.create_user(&server::users::new_user(
                    &username,
                    role,
                    organisation,
                    hash(&password)?,
                    now,
                ))?;
                crate::audit_cmd::record(
                    store,
                    "user.create",
                    format!("user:{}", user.username),
                    serde_json::json!({
                        "role": user.role.to_string(),
                        "organisation": user.organisation,
                    }),
                )?;
                if generated {
                    println!("{password}");
                    eprintln!(
                        "user {} ({}) created; the password above is shown this once",
                        user.username, user.role
                    );
                } else {
                    eprintln!("user {} ({}) created", user.username, user.role);
                }
            }
            UserCommand::List => {
                for u in store.users()? {
                    let state = match (u.disabled_at, u.locked_until) {
                        (Some(d), _) => format!("disabled {d}"),
                        (None, Some(l)) if l > now => format!("locked until {l}"),
                        _ => "active".to_owned(),
                    };
                    let totp = if u.totp_secret.is_some() { "totp" } else { "-" };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        u.username,
                        u.role,
                        u.organisation.as_deref().unwrap_or("-"),
                        totp,
                        state,
                        u.created_at
                    );
                }
            }
            UserCommand::Disable { username } => {
                let u = store.user_by_name(&username)?;
                let u = store.disable_user(u.id, now)?;
                crate::audit_cmd::record(
                    store,
                    "user.disable",
                    format!("user:{}", u.username),
                    serde_json::json!({}),
                )?;
                println!(
                    "user {} disabled at {}; their sessions ended",
                    u.username,
                    u.disabled_at.unwrap_or(now)
                );
            }
            UserCommand::ResetPassword {
                username,
                password_stdin,
            } => {
                let u = store.user_by_name(&username)?;
                let (password, generated) = password(password_stdin)?;
                store.set_user_password(u.id, &hash(&password)?)?;
                crate::audit_cmd::record(
                    store,
                    "user.reset_password",
                    format!("user:{}", u.username),
                    serde_json::json!({}),
                )?;
                if generated {
                    println!("{password}");
                    eprintln!(
                        "password of {} reset; the password above is shown this once",
                        u.username
                    );
                } else {
                    eprintln!("password of {} reset", u.username);
                }
            }
            UserCommand::ResetTotp { username } => {
                let u = store.user_by_name(&username)?;
                store.set_user_totp(u.id, None)?;
                crate::audit_cmd::record(
                    store,
                    "user.reset_totp",
                    format!("user:{}", u.username),
                    serde_json::json!({}),
                )?;
                eprintln!(
                    "second factor of {} removed; they can enrol again after signing in",
                    u.username
                );
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
