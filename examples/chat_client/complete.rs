//! Tab completion of commands, nicks and room names, irssi-style: Tab puts
//! in the first match, Tab again the next one (Shift-Tab the previous).

use crate::editor::Editor;

/// What there is to complete against.
pub struct Candidates<'a> {
    /// Command names with their slash (`/join`).
    pub commands: &'a [&'a str],
    /// Nicks known to be online (not our own).
    pub nicks: Vec<String>,
    /// Room names with their `#`: ours and any seen.
    pub rooms: Vec<String>,
}

/// Remembers the last completion so the next Tab moves on to the next match.
#[derive(Default)]
pub struct Completer {
    cycle: Option<Cycle>,
}

struct Cycle {
    /// Where the completed word starts.
    start: usize,
    matches: Vec<String>,
    index: usize,
    /// The line and cursor right after our last completion: if the user
    /// changed anything since, a Tab starts afresh.
    line: Vec<char>,
    cursor: usize,
    /// Put after the match: `": "` after a nick that starts the line.
    suffix: &'static str,
}

impl Completer {
    /// Any key but Tab ends a cycle.
    pub fn reset(&mut self) {
        self.cycle = None;
    }

    /// Completes the word before the cursor; false if nothing matches.
    pub fn complete(&mut self, editor: &mut Editor, cands: &Candidates, backwards: bool) -> bool {
        let continuing = self
            .cycle
            .as_ref()
            .is_some_and(|c| c.line == editor.text() && c.cursor == editor.cursor());
        if continuing {
            let c = self.cycle.as_mut().unwrap();
            let n = c.matches.len();
            c.index = if backwards {
                (c.index + n - 1) % n
            } else {
                (c.index + 1) % n
            };
        } else {
            let Some(cycle) = start_cycle(editor, cands, backwards) else {
                self.cycle = None;
                return false;
            };
            self.cycle = Some(cycle);
        }
        let c = self.cycle.as_mut().unwrap();
        let mut line = editor.text()[..c.start].to_vec();
        line.extend(c.matches[c.index].chars());
        line.extend(c.suffix.chars());
        let cursor = line.len();
        let old_cursor = if continuing { c.cursor } else { editor.cursor() };
        line.extend_from_slice(&editor.text()[old_cursor..]);
        editor.set(line, cursor);
        c.line = editor.text().to_vec();
        c.cursor = cursor;
        true
    }
}

fn start_cycle(editor: &Editor, cands: &Candidates, backwards: bool) -> Option<Cycle> {
    let text = editor.text();
    let cursor = editor.cursor();
    let start = text[..cursor]
        .iter()
        .rposition(|c| c.is_whitespace())
        .map_or(0, |i| i + 1);
    let word: String = text[start..cursor].iter().collect();
    let line: String = text.iter().collect();
    let first_arg_of = |cmds: &[&str]| {
        let head: String = text[..start].iter().collect();
        cmds.iter().any(|c| head == format!("{c} "))
    };

    let (pool, suffix): (Vec<String>, &'static str) = if start == 0 && word.starts_with('/') {
        (cands.commands.iter().map(|c| c.to_string()).collect(), " ")
    } else if word.starts_with('#') || first_arg_of(&["/join", "/part", "/room"]) {
        (cands.rooms.clone(), " ")
    } else if start == 0 && !line.starts_with('/') {
        (cands.nicks.clone(), ": ")
    } else {
        (cands.nicks.clone(), " ")
    };
    let lower = word.to_lowercase();
    let mut matches: Vec<String> = pool
        .into_iter()
        .filter(|cand| {
            let cand = cand.to_lowercase();
            cand.starts_with(&lower)
                || cand
                    .strip_prefix('#')
                    .is_some_and(|bare| bare.starts_with(&lower))
        })
        .collect();
    matches.sort_by_key(|m| m.to_lowercase());
    matches.dedup();
    if matches.is_empty() {
        return None;
    }
    // A space already after the cursor needs no second one.
    let suffix = if text.get(cursor) == Some(&' ') {
        ""
    } else {
        suffix
    };
    Some(Cycle {
        start,
        index: if backwards { matches.len() - 1 } else { 0 },
        matches,
        line: Vec::new(),
        cursor: 0,
        suffix,
    })
}
