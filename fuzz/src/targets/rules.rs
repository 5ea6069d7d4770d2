//! `authz::rules::Glob` (repository-name and account globs) on UTF-8 patterns and texts.
//!
//! Input: the pattern is the first half of the bytes, the text the second half (both must
//! be UTF-8). Checked against a memoised reference matcher written independently of the
//! automaton under test, plus invariants that need no reference.

use registry_gate::authz::rules::Glob;

/// Longest pattern and text (in characters) checked against the reference.
const REFERENCE_MAX: usize = 64;

/// One input of the `rules` target; panics on a failed check.
pub fn run(data: &[u8]) {
    let (pattern, text) = data.split_at(data.len() / 2);
    let (Ok(pattern), Ok(text)) = (std::str::from_utf8(pattern), std::str::from_utf8(text)) else {
        return;
    };
    for name in [true, false] {
        let glob = if name {
            Glob::name(pattern)
        } else {
            Glob::account(pattern)
        };
        let matched = glob.matches(text);
        // Wildcards match themselves too, so every pattern matches its own text.
        assert!(glob.matches(pattern), "name={name} pattern={pattern:?}");
        if !pattern.contains(['*', '?']) {
            assert_eq!(
                matched,
                text == pattern,
                "name={name} pattern={pattern:?} text={text:?}"
            );
        }
        // In a name, only `**` crosses `/`.
        if name && matched && !pattern.contains("**") {
            assert_eq!(
                text.matches('/').count(),
                pattern.matches('/').count(),
                "pattern={pattern:?} text={text:?}"
            );
        }
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        if p.len() <= REFERENCE_MAX && t.len() <= REFERENCE_MAX {
            let mut memo = vec![vec![None; t.len() + 1]; p.len() + 1];
            let expected = reference(&p, &t, name, 0, 0, &mut memo);
            assert_eq!(
                matched, expected,
                "name={name} pattern={pattern:?} text={text:?}"
            );
        }
    }
}

/// Whether `p[i..]` matches `t[j..]`, reading wildcards as it goes: in a name `**` is any
/// run, `*` a run without `/`, `?` one character but `/`; in an account `*` is any run
/// and `?` any character.
fn reference(
    p: &[char],
    t: &[char],
    name: bool,
    i: usize,
    j: usize,
    memo: &mut Vec<Vec<Option<bool>>>,
) -> bool {
    if let Some(known) = memo[i][j] {
        return known;
    }
    let here = t.get(j).copied();
    let result = match p.get(i) {
        None => here.is_none(),
        Some('*') => {
            let crosses = !name || p.get(i + 1) == Some(&'*');
            let after = if name && crosses { i + 2 } else { i + 1 };
            reference(p, t, name, after, j, memo)
                || here.is_some_and(|c| crosses || c != '/')
                    && reference(p, t, name, i, j + 1, memo)
        }
        Some('?') => {
            here.is_some_and(|c| !name || c != '/') && reference(p, t, name, i + 1, j + 1, memo)
        }
        Some(&c) => here == Some(c) && reference(p, t, name, i + 1, j + 1, memo),
    };
    memo[i][j] = Some(result);
    result
}
