//! `oxtree-prepare-root`: only the initramfs step of oxtree, as a small
//! binary of its own (as ostree ships ostree-prepare-root). The initramfs
//! carries this instead of the whole `oxtree`: every megabyte there is
//! read by the boot loader and unpacked by the kernel on every boot.

use clap::Parser;

#[path = "../commands/prepare_root.rs"]
mod prepare_root;

fn main() {
    let cmd = prepare_root::Cmd::parse();
    if let Err(e) = prepare_root::run(cmd.args, &cmd.sysroot) {
        eprintln!("oxtree-prepare-root: {e:#}");
        std::process::exit(1);
    }
}
