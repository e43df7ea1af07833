//! `oxtree`: the command-line front end. Parses arguments, calls the
//! library crates, and renders their results; no repository logic here.

mod commands;
mod output;
mod reporter;
mod util;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "oxtree",
    about = "Content-addressed OS trees, byte-compatible with ostree",
    // Like ostree (GOption): a repeated option keeps its last value.
    args_override_self = true,
    // `ostree FOO` runs `ostree-FOO` from PATH when FOO is no command.
    allow_external_subcommands = true
)]
struct Cli {
    /// Accepted on every command for ostree compatibility (ostree prints
    /// debug messages)
    #[arg(short = 'v', long, global = true)]
    verbose: bool,
    /// Print version information (in ostree's format, with its feature list)
    #[arg(long, action = clap::ArgAction::SetTrue)]
    version: bool,
    /// Path to the repository (like ostree's --repo).
    #[arg(long, global = true, value_name = "PATH", env = "OSTREE_REPO")]
    repo: Option<PathBuf>,
    /// Run `admin` and package commands through an oxtreed agent:
    /// unix:///run/oxtree/oxtreed.sock or https://HOST:PORT
    #[arg(long, global = true, value_name = "URL", env = "OXTREE_HOST")]
    host: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Initialize a new empty repository
    Init(commands::init::Args),
    /// Commit a new revision
    Commit(Box<commands::commit::Args>),
    /// Check out a commit into a filesystem tree
    Checkout(commands::checkout::Args),
    /// List file paths of a commit
    Ls(commands::ls::Args),
    /// Concatenate the contents of files in a commit
    Cat(commands::cat::Args),
    /// Output a metadata object
    Show(commands::show::Args),
    /// Show the history of a branch
    Log(commands::log::Args),
    /// List refs, or create and delete them
    Refs(commands::refs::Args),
    /// Output the target of a revision
    RevParse(commands::rev_parse::Args),
    /// Point a ref at an earlier commit of its history
    Reset(commands::reset::Args),
    /// Compare two revisions
    Diff(commands::diff::Args),
    /// Checksum a file or directory as ostree would store it
    Checksum(commands::checksum::Args),
    /// Check the repository for consistency
    Fsck(commands::fsck::Args),
    /// Delete unreachable objects
    Prune(commands::prune::Args),
    /// Read or change the repository configuration
    Config(commands::config::Args),
    /// Stream a commit as a tar archive
    Export(commands::export::Args),
    /// Copy commits from a local repository
    PullLocal(commands::pull_local::Args),
    /// Manage remote repositories
    Remote(commands::remote::Args),
    /// Download commits from a remote repository
    Pull(commands::pull::Args),
    /// Manage the repository summary file
    Summary(commands::summary::Args),
    /// Find repositories offering the newest commits of collection refs
    FindRemotes(commands::find_remotes::Args),
    /// Copy collection refs to a repository on a removable volume
    CreateUsb(commands::create_usb::Args),
    /// Manage static delta files
    StaticDelta(commands::static_delta::Args),
    /// Sign a commit (ed25519), or verify or delete its signatures
    Sign(commands::sign::Args),
    /// Sign a commit with GPG (OpenPGP), or delete GPG signatures
    GpgSign(commands::gpg_sign::Args),
    /// Serve the repository read-only over HTTP
    Serve(commands::serve::Args),
    /// Manage a sysroot: deployments, stateroots, boot entries
    Admin(commands::admin::Args),
    /// Layer Debian packages on the base of the default deployment
    Install(commands::layer::InstallArgs),
    /// Remove layered packages again
    Uninstall(commands::layer::UninstallArgs),
    /// Remove base packages, or undo such removals
    Override(commands::layer::OverrideArgs),
    /// Early boot: make the deployment named by ostree= on the kernel
    /// command line the new root (for the initramfs)
    PrepareRoot(commands::prepare_root::Cmd),
    /// Compose OS commits from Debian packages
    Compose(commands::compose::Args),
    /// Query the Debian packages of composed commits
    Db(commands::db::Args),
    /// Install a commit to a disk or image file that boots (BIOS and UEFI)
    ToDisk(commands::to_disk::Args),
    /// The host agent (oxtreed): the host's transactions as a REST API
    Agent(commands::agent::Args),
    /// The OS as an OCI image: encapsulate a commit (ostree-ext format)
    Container(commands::container::Args),
    /// `ostree-NAME` from PATH, run as `ostree NAME`
    #[command(external_subcommand)]
    External(Vec<OsString>),
    /// FleetLock reboot coordination: an etcd-backed server and its client
    Fleetlock(commands::fleetlock::Args),
    /// Automatic updates: check, stage, wait for a window and a FleetLock
    /// slot, reboot; report steady state after the boot
    Updates(commands::updates::Args),
    /// systemd units: list, status, start, stop, restart, enable, disable
    /// (here, or on an agent with --host)
    Units(commands::system::UnitsArgs),
    /// A unit's last journal lines
    Journal(commands::system::JournalArgs),
    /// systemd-networkd links; static addresses, gateway and DNS
    Network(commands::system::NetworkArgs),
}

/// A closed stdout (`oxtree ls … | grep -q x`) ends the program with status
/// 0, as ostree does (it ignores the write error), instead of 141 or a panic.
/// Any other broken pipe (a socket, a child's stdin) still kills us by
/// SIGPIPE, so it can never pass for success.
/// ostree takes the first argument that is not an option as the command,
/// wherever it stands, and parses every option around it together
/// (`ostree --repo=r --print-metadata-key=K show REF`); `admin` does the
/// same for its own commands. clap wants a command's options after it, so
/// the command (and the admin command) move to the front. The values of
/// oxtree's own global options given as a separate word (`--repo PATH`)
/// are skipped, which ostree does not do.
fn command_first(mut args: Vec<OsString>) -> Vec<OsString> {
    fn move_command(args: &mut [OsString], from: usize) -> Option<usize> {
        let mut i = from;
        while i < args.len() {
            let a = args[i].to_string_lossy();
            if a == "--" {
                return None;
            }
            if !a.starts_with('-') || a == "-" {
                args[from..=i].rotate_right(1);
                return Some(from);
            }
            if matches!(a.as_ref(), "--repo" | "--host" | "--sysroot") {
                i += 1;
            }
            i += 1;
        }
        None
    }
    if let Some(at) = move_command(&mut args, 1) {
        // Groups whose subcommand may follow options too (`ostree remote
        // --set=K=V add …`); such options must then be one word.
        if args[at] == "admin" || args[at] == "remote" {
            move_command(&mut args, at + 1);
        }
    }
    args
}

/// Every command group as ostree shows it: its commands under "Builtin
/// Commands:", no `help` pseudo-command, and a missing or unknown command
/// reported (with the usage, on stderr) rather than answered with help.
fn ostree_style(cmd: clap::Command) -> clap::Command {
    cmd.subcommand_help_heading("Builtin Commands")
        // One line per command: scripts (and ostree's test-help) take the
        // first word of each line of the list.
        .term_width(0)
        .disable_help_subcommand(true)
        .arg_required_else_help(false)
        .mut_subcommands(ostree_style)
}

/// The usage line of the command at `path` (`["admin"]`), for errors.
pub fn usage_of(path: &[&str]) -> String {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oxtree".into());
    let mut cmd = ostree_style(<Cli as clap::CommandFactory>::command()).bin_name(name);
    cmd.build();
    fn walk(c: &mut clap::Command, path: &[&str]) -> String {
        match path.split_first() {
            Some((p, rest)) if c.find_subcommand(p).is_some() => {
                walk(c.find_subcommand_mut(p).expect("found above"), rest)
            }
            _ => c.render_usage().to_string(),
        }
    }
    walk(&mut cmd, path)
}

/// Parse like ostree's option parser reports: `No command specified` and
/// `Unknown command 'X'` with the usage on stderr, exit status 1.
fn parse_like_ostree(args: Vec<OsString>) -> Cli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::FromArgMatches;
    let cmd = ostree_style(<Cli as clap::CommandFactory>::command());
    let e = match cmd.try_get_matches_from(args) {
        Ok(m) => match Cli::from_arg_matches(&m) {
            Ok(c) => return c,
            Err(e) => e,
        },
        Err(e) => e,
    };
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(u)) => u.to_string(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("error: No command specified\n\n{usage}");
            std::process::exit(1);
        }
        ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(n)) => n.clone(),
                _ => String::new(),
            };
            eprintln!("error: Unknown command '{name}'\n\n{usage}");
            std::process::exit(1);
        }
        _ => e.exit(),
    }
}

extern "C" fn on_sigpipe(_: libc::c_int) {
    let mut fds = [libc::pollfd {
        fd: 1,
        events: libc::POLLOUT,
        revents: 0,
    }];
    // SAFETY: poll, _exit, signal and raise are async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 1, 0) == 1 && fds[0].revents & libc::POLLERR != 0 {
            libc::_exit(0);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
}

fn main() {
    // Rust ignores SIGPIPE, so `oxtree db list | head` would panic on the
    // closed pipe; end quietly instead.
    // SAFETY: setting a signal disposition before any thread is started.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, on_sigpipe as *const () as libc::sighandler_t);
    }
    // Started under the name `oxtreed` (a symlink): the agent.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let cli = if std::path::Path::new(&argv0).file_name() == Some("oxtreed".as_ref()) {
        Cli::parse_from(
            ["oxtree".into(), "agent".into()]
                .into_iter()
                .chain(std::env::args_os().skip(1)),
        )
    } else {
        parse_like_ostree(command_first(std::env::args_os().collect()))
    };
    let host = cli.host.clone();
    if cli.version {
        print!("{}", commands::version::render());
        return;
    }
    let Some(command) = cli.command else {
        eprintln!("error: No command specified\n\n{}", usage_of(&[]));
        std::process::exit(1);
    };
    let repo = cli.repo.clone();
    // Commands that move refs regenerate the summary afterwards when the
    // repository asks for it (core.auto-update-summary, or for commit
    // core.commit-update-summary), as ostree does.
    let moves_refs = match &command {
        Command::Commit(_) => Some(true),
        Command::Reset(_)
        | Command::Refs(_)
        | Command::Pull(_)
        | Command::PullLocal(_)
        | Command::FindRemotes(_) => Some(false),
        _ => None,
    };
    let result = match command {
        Command::Init(a) => commands::init::run(repo, a),
        Command::Commit(a) => commands::commit::run(repo, *a),
        Command::Checkout(a) => commands::checkout::run(repo, a),
        Command::Ls(a) => commands::ls::run(repo, a),
        Command::Cat(a) => commands::cat::run(repo, a),
        Command::Show(a) => commands::show::run(repo, a),
        Command::Log(a) => commands::log::run(repo, a),
        Command::Refs(a) => commands::refs::run(repo, a),
        Command::RevParse(a) => commands::rev_parse::run(repo, a),
        Command::Reset(a) => commands::reset::run(repo, a),
        Command::Diff(a) => commands::diff::run(repo, a),
        Command::Checksum(a) => commands::checksum::run(repo, a),
        Command::Fsck(a) => commands::fsck::run(repo, a),
        Command::Prune(a) => commands::prune::run(repo, a),
        Command::Config(a) => commands::config::run(repo, a),
        Command::Export(a) => commands::export::run(repo, a),
        Command::PullLocal(a) => commands::pull_local::run(repo, a),
        Command::Remote(a) => commands::remote::run(repo, a),
        Command::Pull(a) => commands::pull::run(repo, a),
        Command::Summary(mut a) => {
            a.view |= cli.verbose;
            commands::summary::run(repo, a)
        }
        Command::FindRemotes(a) => commands::find_remotes::run(repo, a),
        Command::CreateUsb(a) => commands::create_usb::run(repo, a),
        Command::StaticDelta(a) => commands::static_delta::run(repo, a),
        Command::Sign(a) => commands::sign::run(repo, a),
        Command::GpgSign(a) => commands::gpg_sign::run(repo, a),
        Command::Serve(a) => commands::serve::run(repo, a),
        Command::Admin(a) => commands::admin::run(repo, a, host.as_deref()),
        Command::Install(a) => commands::layer::install(a, host.as_deref()),
        Command::Uninstall(a) => commands::layer::uninstall(a, host.as_deref()),
        Command::Override(a) => commands::layer::override_(a, host.as_deref()),
        Command::PrepareRoot(p) => commands::prepare_root::run(p.args, &p.sysroot),
        Command::Compose(a) => commands::compose::run(repo, a),
        Command::Db(a) => commands::db::run(repo, a),
        Command::ToDisk(a) => commands::to_disk::run(repo, a),
        Command::Agent(a) => commands::agent::run(a),
        Command::Container(a) => commands::container::run(repo, a),
        Command::External(argv) => commands::external::run(argv),
        Command::Fleetlock(a) => commands::fleetlock::run(a),
        Command::Updates(a) => commands::updates::run(a),
        Command::Units(a) => commands::system::units(a, host.as_deref()),
        Command::Journal(a) => commands::system::journal(a, host.as_deref()),
        Command::Network(a) => commands::system::network(a, host.as_deref()),
    };
    let result = match (result, moves_refs) {
        (Ok(()), Some(commit)) => commands::summary::auto_update(cli.repo.clone(), commit),
        (r, _) => r,
    };
    if let Err(e) = result {
        // The whole chain, once: each error says only its own layer.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
