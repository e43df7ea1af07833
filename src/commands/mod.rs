//! One module per command; each has `Args` (clap) and `run`.

pub mod admin;
pub mod cat;
pub mod checkout;
pub mod checksum;
pub mod commit;
pub mod compose;
pub mod config;
pub mod db;
pub mod diff;
pub mod export;
pub mod fsck;
pub mod gpg_sign;
pub mod init;
pub mod log;
pub mod ls;
pub mod prune;
pub mod pull;
pub mod pull_local;
pub mod refs;
pub mod remote;
pub mod reset;
pub mod rev_parse;
pub mod serve;
pub mod show;
pub mod sign;
pub mod summary;
