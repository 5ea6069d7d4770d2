//! Request → the [`Access`] it needs: what a `/v2/` request touches and which rights on
//! which repository, as the registry's own access records have it.
//!
//! The audit log records it (repository, action, reference or digest), and the per-repository
//! rules decide on it. Everything here is a pure function of the method, the raw
//! path and the raw query; whatever it does not recognise is an [`Error`], which callers deny.
//!
//! # What this follows (CNCF distribution, `github.com/distribution/distribution`)
//!
//! - `registry/api/v2/descriptors.go` and `routes.go`: the routes, in the order gorilla/mux
//!   tries them: `/v2/`, `/v2/{name}/tags/list`, `/v2/{name}/manifests/{reference}`,
//!   `/v2/{name}/blobs/{digest}`, `/v2/{name}/blobs/uploads/`,
//!   `/v2/{name}/blobs/uploads/{uuid}`, `/v2/_catalog`. Each route ends in fixed segments
//!   and a last segment that cannot hold a `/`, so the name is everything before them: the
//!   path splits at its *last* `/manifests/`, `/blobs/`, `/blobs/uploads/` or `/tags/list`
//!   (`/v2/a/manifests/b/manifests/latest` is tag `latest` of `a/manifests/b`), and no two
//!   routes match the same path, so their order does not matter.
//! - The same router sets `StrictSlash(true)` and cleans paths: a path with an extra or
//!   missing trailing slash, or with `//`, only draws a 301 from the registry. Refused here.
//! - gorilla/mux matches the *decoded* path (`req.URL.Path`; `UseEncodedPath` is not set).
//!   Names, tags, digests and upload ids never contain `%`, so the raw path equals the
//!   decoded one exactly when it has no `%`; a path with any percent-escape is refused
//!   ([`Error::PercentEscape`]) rather than decoded, so what is checked is what is routed.
//! - `vendor/github.com/distribution/reference/regexp.go`: a name is path components
//!   `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*` joined by `/`, at most 255 characters; tags are
//!   `[\w][\w.-]{0,127}`. The route's `NameRegexp` also admits a first component shaped like
//!   a host (`localhost:5000`, `Example.com`) and `WithName` measures the length after it;
//!   docker, containerd and skopeo never send such names after the registry host, so only
//!   path components are accepted here, and the whole name is measured.
//! - `vendor/github.com/opencontainers/go-digest/digest.go`: the routes' `DigestRegexp`,
//!   `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`, checked exactly. The upload id is the
//!   route's `[a-zA-Z0-9-_.=]+`.
//! - `registry/handlers/app.go`, `appendAccessRecords`: GET and HEAD need pull; POST, PUT and
//!   PATCH need pull and push (recorded in that order); DELETE needs delete. `authorized`
//!   also asks for pull on the `from` query value (`r.FormValue("from")`) whenever it is
//!   non-empty on a route with a name, mount or not: [`Access::mount_from`].
//!   `appendCatalogAccessRecord`: `/v2/_catalog` needs the `registry:catalog:*` right, not a
//!   repository right; `/v2/` needs none.
//! - `registry/handlers/{manifests,blob,blobupload,tags,catalog}.go`: the methods each
//!   dispatcher serves. `/v2/` answers any method and `blobs/uploads/` any upload method;
//!   this module allows only what the API defines (`docs/content/spec/api.md`): GET/HEAD on
//!   `/v2/`, POST on `blobs/uploads/`, no POST on an upload session, no OPTIONS anywhere.
//! - Go's `url.ParseQuery` decodes `from`: pairs split at `&`, a pair holding `;` or a bad
//!   `%` escape is skipped, `+` is a space, the first value wins. A query that holds `;`
//!   (Go before 1.17 split on it) or gives `from` twice is refused, so that no parser sees a
//!   `from` this one missed.
//!
//! Distribution has no referrers API; `/v2/{name}/referrers/{digest}` (GET) is the OCI
//! distribution spec's (end-12a) for registries that have one, and needs pull.
//!
//! Go's `FormValue` also reads `from` from a POST, PUT or PATCH *body* sent as a form; the
//! query alone cannot show that, so callers refuse such requests: [`reads_form_body`].

use std::fmt;

use http::{HeaderMap, Method};

/// The longest repository name, in bytes (`RepositoryNameTotalLengthMax`).
const NAME_MAX_LEN: usize = 255;
/// The longest tag, in bytes (`[\w][\w.-]{0,127}`).
const TAG_MAX_LEN: usize = 128;

/// A right on a repository, as the registry's token scopes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read manifests, blobs, tags, referrers and upload status.
    Pull,
    /// Write manifests and blobs.
    Push,
    /// Delete manifests and blobs, cancel uploads.
    Delete,
}

impl Action {
    /// The scope word: `pull`, `push` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `/v2/` path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`: the list of repositories.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// A tag or a digest, as the path gives it.
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// A well-formed digest.
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/` (start) and `/v2/<name>/blobs/uploads/<session>`.
    Upload {
        /// The upload session id; `None` on the start (POST) path.
        session: Option<String>,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// The subject's well-formed digest.
        digest: String,
    },
}

impl Target {
    /// The tag, digest or upload session the path names, for the audit log.
    pub fn object(&self) -> Option<&str> {
        match self {
            Target::Manifest { reference } => Some(reference),
            Target::Blob { digest } | Target::Referrers { digest } => Some(digest),
            Target::Upload { session } => session.as_deref(),
            Target::Base | Target::Catalog | Target::Tags => None,
        }
    }

    /// The route, as error messages name it.
    fn route(&self) -> &'static str {
        match self {
            Target::Base => "/v2/",
            Target::Catalog => "/v2/_catalog",
            Target::Tags => "tags/list",
            Target::Manifest { .. } => "manifests/<reference>",
            Target::Blob { .. } => "blobs/<digest>",
            Target::Upload { session: None } => "blobs/uploads/",
            Target::Upload { session: Some(_) } => "blobs/uploads/<session>",
            Target::Referrers { .. } => "referrers/<digest>",
        }
    }

    /// The methods the route serves.
    fn allows(&self, method: &Method) -> bool {
        let m = method;
        match self {
            Target::Base => m == Method::GET || m == Method::HEAD,
            Target::Catalog | Target::Tags | Target::Referrers { .. } => m == Method::GET,
            Target::Manifest { .. } => {
                [Method::GET, Method::HEAD, Method::PUT, Method::DELETE].contains(m)
            }
            Target::Blob { .. } => [Method::GET, Method::HEAD, Method::DELETE].contains(m),
            Target::Upload { session: None } => m == Method::POST,
            Target::Upload { session: Some(_) } => [
                Method::GET,
                Method::HEAD,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ]
            .contains(m),
        }
    }
}

/// What a request touches and the rights it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// What the path names.
    pub target: Target,
    /// The repository, a valid name; `None` exactly for [`Target::Base`] and
    /// [`Target::Catalog`].
    pub repository: Option<String>,
    /// The rights needed on `repository`, in the registry's order: `[Pull]`, `[Pull, Push]` or
    /// `[Delete]`. Empty exactly when `repository` is `None`.
    pub actions: Vec<Action>,
    /// The `from` query value, a valid name, on which the request also needs pull. The
    /// registry asks for it whenever `from` is given on a repository route, and mounts a blob
    /// from it on `POST …/blobs/uploads/?mount=<digest>&from=<name>`.
    pub mount_from: Option<String>,
}

impl Access {
    /// The one action the audit log shows: delete over push over pull; `None` for `/v2/` and
    /// the catalog.
    pub fn primary_action(&self) -> Option<Action> {
        [Action::Delete, Action::Push, Action::Pull]
            .into_iter()
            .find(|a| self.actions.contains(a))
    }
}

/// Why a repository name is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Longer than 255 bytes.
    #[error("{0} characters, more than 255")]
    TooLong(usize),
    /// Empty, or with `//` or a `/` at either end.
    #[error("empty path component")]
    EmptyComponent,
    /// A component outside `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
    #[error("path component {0:?} is not lowercase letters and digits joined by '.', '_', '__' or dashes")]
    InvalidComponent(String),
}

/// Why a request maps to no access; the caller denies it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The path does not start with `/v2/`.
    #[error("path {0:?} is not under /v2/")]
    NotRegistry(String),
    /// The path has a `%`: the registry would route on its decoded form.
    #[error("path {0:?} has a percent-escape")]
    PercentEscape(String),
    /// No registry route has this shape.
    #[error("unknown registry path {0:?}")]
    UnknownPath(String),
    /// The route does not serve this method.
    #[error("method {method} is not allowed on {route}")]
    Method {
        /// The request's method.
        method: Method,
        /// The route, e.g. `tags/list`.
        route: &'static str,
    },
    /// The repository name in the path is invalid.
    #[error("invalid repository name {name:?}: {problem}")]
    Name {
        /// The name as the path gives it.
        name: String,
        /// What is wrong with it.
        problem: NameError,
    },
    /// A manifest reference that is neither a tag nor a digest.
    #[error("manifest reference {0:?} is neither a tag nor a digest")]
    Reference(String),
    /// A blob or referrers path whose last segment is not a digest.
    #[error("invalid digest {0:?}")]
    Digest(String),
    /// An upload session id outside `[a-zA-Z0-9-_.=]+`.
    #[error("invalid upload session id {0:?}")]
    Session(String),
    /// The query has a `;`, which Go before 1.17 took as a separator.
    #[error("query has a ';'")]
    QuerySemicolon,
    /// The query gives `from` more than once.
    #[error("query gives \"from\" more than once")]
    RepeatedFrom,
    /// The `from` value has a bad percent-escape.
    #[error("query value of \"from\" has an invalid percent-escape")]
    FromEscape,
    /// The `from` value is not a valid repository name.
    #[error("invalid \"from\" repository name {name:?}: {problem}")]
    From {
        /// The decoded value.
        name: String,
        /// What is wrong with it.
        problem: NameError,
    },
}

/// Maps a request to the access it needs.
///
/// `path` is the raw request path and `query` the raw query (without `?`), both as the
/// client sent them and the registry will receive them.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Result<Access, Error> {
    let rest = path
        .strip_prefix("/v2/")
        .ok_or_else(|| Error::NotRegistry(path.to_owned()))?;
    if rest.contains('%') {
        return Err(Error::PercentEscape(path.to_owned()));
    }
    let (target, name) = match rest {
        "" => (Target::Base, None),
        "_catalog" => (Target::Catalog, None),
        _ => {
            let (target, name) = split(rest).ok_or_else(|| Error::UnknownPath(path.to_owned()))?;
            (target, Some(name))
        }
    };
    if let Some(name) = name {
        check_name(name).map_err(|problem| Error::Name {
            name: name.to_owned(),
            problem,
        })?;
    }
    check_object(&target)?;
    if !target.allows(method) {
        return Err(Error::Method {
            method: method.clone(),
            route: target.route(),
        });
    }
    let Some(name) = name else {
        return Ok(Access {
            target,
            repository: None,
            actions: Vec::new(),
            mount_from: None,
        });
    };
    Ok(Access {
        target,
        repository: Some(name.to_owned()),
        actions: actions(method),
        mount_from: from_param(query.unwrap_or(""))?,
    })
}

/// Whether the registry would also read query parameters (`from`, `mount`) from the body:
/// Go's `Request.FormValue` parses a POST, PUT or PATCH body whose media type is
/// `application/x-www-form-urlencoded` or `multipart/form-data`. Every `Content-Type` value
/// is checked (Go reads the first), and one whose media type is not ASCII counts as a form,
/// since Go lowercases it with Unicode rules (`İ` → `i`).
pub fn reads_form_body(method: &Method, headers: &HeaderMap) -> bool {
    if ![Method::POST, Method::PUT, Method::PATCH].contains(method) {
        return false;
    }
    headers
        .get_all(http::header::CONTENT_TYPE)
        .iter()
        .any(|value| {
            let bytes = value.as_bytes();
            let base = bytes.split(|&b| b == b';').next().unwrap_or_default();
            let Ok(base) = std::str::from_utf8(base) else {
                return true;
            };
            let base = base.trim();
            !base.is_ascii()
                || base.eq_ignore_ascii_case("application/x-www-form-urlencoded")
                || base.eq_ignore_ascii_case("multipart/form-data")
        })
}

/// Splits the path after `/v2/` into the target and the (unchecked) name.
fn split(rest: &str) -> Option<(Target, &str)> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some((Target::Tags, name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Some((Target::Upload { session: None }, name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    let last = last.to_owned();
    match kind {
        "manifests" => Some((Target::Manifest { reference: last }, name)),
        "blobs" => Some((Target::Blob { digest: last }, name)),
        "referrers" => Some((Target::Referrers { digest: last }, name)),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?;
            Some((
                Target::Upload {
                    session: Some(last),
                },
                name,
            ))
        }
        _ => None,
    }
}

/// Checks the reference, digest or session id the path names.
fn check_object(target: &Target) -> Result<(), Error> {
    match target {
        Target::Manifest { reference } if !is_tag(reference) && !is_digest(reference) => {
            Err(Error::Reference(reference.clone()))
        }
        Target::Blob { digest } | Target::Referrers { digest } if !is_digest(digest) => {
            Err(Error::Digest(digest.clone()))
        }
        Target::Upload { session: Some(id) } if !is_session(id) => Err(Error::Session(id.clone())),
        _ => Ok(()),
    }
}

/// `appendAccessRecords`: the rights a method needs on the repository.
fn actions(method: &Method) -> Vec<Action> {
    if method == Method::DELETE {
        vec![Action::Delete]
    } else if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
        vec![Action::Pull, Action::Push]
    } else {
        vec![Action::Pull]
    }
}

/// The first `from` value as Go's `url.ParseQuery` decodes it, if non-empty and valid.
fn from_param(query: &str) -> Result<Option<String>, Error> {
    if query.contains(';') {
        return Err(Error::QuerySemicolon);
    }
    let mut from = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if query_unescape(key).as_deref() != Some(b"from") {
            continue;
        }
        if from.is_some() {
            return Err(Error::RepeatedFrom);
        }
        from = Some(query_unescape(value).ok_or(Error::FromEscape)?);
    }
    let Some(from) = from.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let name = String::from_utf8_lossy(&from).into_owned();
    match check_name(&name) {
        Ok(()) => Ok(Some(name)),
        Err(problem) => Err(Error::From { name, problem }),
    }
}

/// Go's `url.QueryUnescape`: `%XX` is a byte, `+` a space; `None` on a bad escape.
fn query_unescape(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex)?;
                let lo = bytes.get(i + 2).copied().and_then(hex)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks a repository name: path components joined by `/`, at most 255 bytes, with no
/// registry host in front (see the module documentation). The token endpoint checks the
/// names in requested scopes with it, so both front doors accept the same names.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.len() > NAME_MAX_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(NameError::EmptyComponent);
        }
        if !separated(component.as_bytes(), component_separator) {
            return Err(NameError::InvalidComponent(component.to_owned()));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:SEP[a-z0-9]+)*`, where `separator` gives the length of the separator
/// starting at a position (0: none).
fn separated(bytes: &[u8], separator: fn(&[u8]) -> usize) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut rest = bytes;
    loop {
        let run = rest.iter().take_while(|b| alnum(b)).count();
        if run == 0 {
            return false;
        }
        rest = &rest[run..];
        if rest.is_empty() {
            return true;
        }
        match separator(rest) {
            0 => return false,
            n => rest = &rest[n..],
        }
    }
}

/// A name component's separator: `.`, `_`, `__` or one or more `-`.
fn component_separator(rest: &[u8]) -> usize {
    match rest {
        [b'_', b'_', ..] => 2,
        [b'.' | b'_', ..] => 1,
        _ => rest.iter().take_while(|&&b| b == b'-').count(),
    }
}

/// A digest algorithm's separator: one of `.+_-`.
fn algorithm_separator(rest: &[u8]) -> usize {
    usize::from(matches!(rest.first(), Some(b'.' | b'+' | b'_' | b'-')))
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    s.len() <= TAG_MAX_LEN
        && s.bytes().next().is_some_and(word)
        && s.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// go-digest's `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_digest(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    separated(algorithm.as_bytes(), algorithm_separator)
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// The upload route's `[a-zA-Z0-9-_.=]+`.
fn is_session(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

#[cfg(test)]
mod tests;
