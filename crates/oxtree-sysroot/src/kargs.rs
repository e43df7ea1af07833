//! Kernel command-line arguments with ostree's edit rules: `replace` sets
//! the value of the first argument with that key (dropping other copies) or
//! appends it; `append` always appends.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelArgs {
    args: Vec<String>,
}

fn key(arg: &str) -> &str {
    arg.split_once('=').map(|(k, _)| k).unwrap_or(arg)
}

impl KernelArgs {
    pub fn parse(s: &str) -> Self {
        KernelArgs {
            args: s.split_whitespace().map(str::to_string).collect(),
        }
    }

    pub fn replace(&mut self, arg: &str) {
        let k = key(arg);
        match self.args.iter().position(|a| key(a) == k) {
            Some(i) => {
                self.args[i] = arg.to_string();
                let mut n = 0;
                self.args.retain(|a| {
                    n += 1;
                    n - 1 == i || key(a) != k
                });
            }
            None => self.args.push(arg.to_string()),
        }
    }

    pub fn append(&mut self, arg: &str) {
        self.args.push(arg.to_string());
    }

    pub fn remove_key(&mut self, k: &str) {
        self.args.retain(|a| key(a) != k);
    }

    pub fn to_cmdline(&self) -> String {
        self.args.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn edits() {
        let mut k = KernelArgs::parse("root=/dev/sda quiet ostree=/a");
        k.replace("ostree=/b");
        k.replace("foo=bar");
        k.append("quiet");
        assert_eq!(
            k.to_cmdline(),
            "root=/dev/sda quiet ostree=/b foo=bar quiet"
        );
        k.replace("quiet");
        assert_eq!(k.to_cmdline(), "root=/dev/sda quiet ostree=/b foo=bar");
    }
}
