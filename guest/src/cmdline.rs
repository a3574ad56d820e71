//! The kernel command line (`start_info.cmd_line`): whitespace-separated `key=value` words;
//! a bare word is a key with an empty value. Later words win, like Linux `__setup` options.

/// A parsed view of the command line; borrows the bytes, allocates nothing.
#[derive(Clone, Copy)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Parses raw bytes. Anything after the first invalid UTF-8 byte is ignored.
    pub fn parse(bytes: &'a [u8]) -> Self {
        let text = match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                // valid_up_to() is a char boundary by definition, so this cannot fail.
                core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("")
            }
        };
        Cmdline { text }
    }

    /// The whole line.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Iterates over `(key, value)` pairs in order.
    pub fn options(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.text
            .split_ascii_whitespace()
            .map(|w| w.split_once('=').unwrap_or((w, "")))
    }

    /// The value of the last `key=...` word, if any.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.options()
            .filter(|&(k, _)| k == key)
            .map(|(_, v)| v)
            .last()
    }
}
