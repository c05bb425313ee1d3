//! Writing to the terminal or a pipe: sentences or one JSON object per line, and a quiet exit
//! when the reader has gone (`tapline … | head -1`).

use std::io::{ErrorKind, Write};
use std::sync::Mutex;

use serde_json::Value;

/// Writes one line to stdout and flushes it. A closed pipe ends the program at once with exit
/// 0: whoever read the output has what they wanted.
pub fn stdout_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let r = writeln!(out, "{line}").and_then(|()| out.flush());
    if let Err(e) = r {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Nowhere to say it: stdout is gone for another reason (a full disk).
        std::process::exit(i32::from(crate::failure::INTERNAL));
    }
}

/// For commands that may sit silent for long (`listen`, `tap --wait`): exits quietly (0) as
/// soon as stdout is a pipe whose reader has gone, instead of at the next line written.
pub fn exit_when_reader_leaves() {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(|| {
            loop {
                let mut fd = libc::pollfd {
                    fd: 1,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, for the duration of the call.
                let n = unsafe { libc::poll(&mut fd, 1, 250) };
                if n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                    std::process::exit(0);
                }
                if n < 0 {
                    return;
                }
                if n == 0 {
                    continue;
                }
                // Something else (a regular file reports nothing): keep watching slowly.
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        });
}

/// Writes one line to stderr; failures are ignored (there is nowhere else to report them).
pub fn stderr_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Where a command's output goes, in which form.
pub struct Out {
    pub json: bool,
    /// What the outbox flush before the command sent, added to the result as `outbox`.
    outbox: Mutex<Option<Value>>,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out {
            json,
            outbox: Mutex::new(None),
        }
    }

    /// Notes what the outbox flush sent: a sentence on stderr now, and `outbox` in the JSON
    /// result.
    pub fn flushed(&self, sentence: Option<String>, json: Value) {
        if let Some(s) = sentence
            && !self.json
        {
            stderr_line(&s);
        }
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(json);
    }

    /// A command's result: the sentence, or the JSON object with `"result": kind` (and the
    /// flush's `outbox`, when there was one).
    pub fn result(&self, kind: &str, human: impl AsRef<str>, json: Value) {
        if self.json {
            stdout_line(&self.result_json(kind, json).to_string());
        } else {
            stdout_line(human.as_ref());
        }
    }

    /// The JSON a result prints.
    pub fn result_json(&self, kind: &str, json: Value) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("result".into(), kind.into());
        match json {
            Value::Object(fields) => object.extend(fields),
            other => {
                object.insert(kind.into(), other);
            }
        }
        if let Some(outbox) = self.outbox.lock().unwrap_or_else(|e| e.into_inner()).take() {
            object.insert("outbox".into(), outbox);
        }
        Value::Object(object)
    }

    /// A line of a stream (`listen`, `tap --wait`): the sentence, or the event's JSON.
    pub fn event(&self, human: Option<&str>, json: &Value) {
        if self.json {
            stdout_line(&json.to_string());
        } else if let Some(h) = human {
            stdout_line(h);
        }
    }

    /// A human-only line (a bar drawn before a rhythm is sent): nothing in JSON mode.
    pub fn note(&self, human: &str) {
        if !self.json {
            stdout_line(human);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_objects_that_say_what_they_are() {
        let out = Out::new(true);
        assert_eq!(
            out.result_json("invite", json!({ "code": "ABCD2345" })),
            json!({ "result": "invite", "code": "ABCD2345" })
        );
        assert_eq!(
            out.result_json("devices", json!([1, 2])),
            json!({ "result": "devices", "devices": [1, 2] })
        );
        out.flushed(None, json!({ "sent_taps": 2 }));
        let r = out.result_json("status", json!({ "online": true }));
        assert_eq!(r["outbox"]["sent_taps"], 2);
        assert_eq!(r["result"], "status");
        // Only the first result carries the flush.
        assert!(out.result_json("status", json!({})).get("outbox").is_none());
    }
}
