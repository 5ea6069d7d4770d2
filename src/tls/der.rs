//! A bounded DER reader for what x509-parser does not read: private keys (PKCS#8's
//! algorithm, SEC1), OCSP responses, and the checks stricter than its lenient parse
//! (a client certificate's subject attributes, basicConstraints' DER `TRUE`).
//! Certificates themselves are parsed by x509-parser, in [`crate::tls::certificate`].
//!
//! It is a forward-only walk over tag-length-value triples: one-byte tags,
//! definite lengths of at most four bytes, every length checked against what is
//! left, no allocation, no recursion. It never panics on any input. The
//! structures it walks are described by their callers (`token::keys::der` for
//! token keys, `tls::client_cert` for a client certificate's subject, `tls::ocsp`
//! for a stapled OCSP response).

/// A DER structure did not have the expected shape; the text says what was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid(pub(crate) &'static str);

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const ENUMERATED: u8 = 0x0a;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
pub(crate) const IA5_STRING: u8 = 0x16;
/// `[0]` and `[1]`, constructed and context-specific: a certificate's version,
/// SEC1's curve and public key, an OCSP response's `responseBytes`.
pub(crate) const CONTEXT_0: u8 = 0xa0;
pub(crate) const CONTEXT_1: u8 = 0xa1;

/// A forward-only reader over a run of DER elements.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `input`, a run of zero or more elements.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Whether every element has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads one element of any tag: its tag and contents.
    pub(crate) fn any(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), Invalid> {
        let tag = self.peek().ok_or(Invalid(what))?;
        self.read(tag, what).map(|contents| (tag, contents))
    }

    /// Reads one element, which must carry `tag`, and returns its contents.
    pub(crate) fn read(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], Invalid> {
        let (&found, after_tag) = self.rest.split_first().ok_or(Invalid(what))?;
        if found != tag {
            return Err(Invalid(what));
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(Invalid(what))?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7f);
                if after_len.len() < count {
                    return Err(Invalid(what));
                }
                let (bytes, rest) = after_len.split_at(count);
                after_len = rest;
                bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
            }
            // 0x80 is BER's indefinite length, which DER forbids; longer lengths
            // cannot fit anything we accept.
            _ => return Err(Invalid(what)),
        };
        if after_len.len() < len {
            return Err(Invalid(what));
        }
        let (contents, rest) = after_len.split_at(len);
        self.rest = rest;
        Ok(contents)
    }

    /// Reads the next element if it carries `tag`.
    pub(crate) fn optional(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, Invalid> {
        if self.peek() == Some(tag) {
            self.read(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything has been read.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), Invalid> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Invalid(what))
        }
    }
}

/// `input` must be exactly one element with `tag`; returns its contents.
pub(crate) fn only<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<&'a [u8], Invalid> {
    let mut reader = Reader::new(input);
    let contents = reader.read(tag, what)?;
    reader.finish(what)?;
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input and what reading it must give.
    type Case = (&'static [u8], Result<&'static [u8], Invalid>);

    #[test]
    fn reader_reads_short_and_long_lengths_and_refuses_overruns() {
        let long = [&[0x04, 0x81, 0x80][..], &[7u8; 0x80]].concat();
        assert_eq!(only(&long, OCTET_STRING, "x"), Ok(&[7u8; 0x80][..]));
        let cases: &[Case] = &[
            (&[0x04, 0x02, 1, 2], Ok(&[1, 2])),
            (&[0x04, 0x00], Ok(&[])),
            (&[0x04, 0x03, 1, 2], Err(Invalid("x"))),
            (&[0x04, 0x80, 1, 2, 0, 0], Err(Invalid("x"))),
            (&[0x04, 0x85, 0, 0, 0, 0, 1, 9], Err(Invalid("x"))),
            (&[0x04, 0x82, 0xff], Err(Invalid("x"))),
            (&[0x04, 0x82, 0xff, 0xff], Err(Invalid("x"))),
            (&[0x02, 0x01, 1], Err(Invalid("x"))),
            (&[0x04, 0x01, 1, 0], Err(Invalid("x"))),
            (&[0x04], Err(Invalid("x"))),
            (&[], Err(Invalid("x"))),
        ];
        for (input, want) in cases {
            assert_eq!(&only(input, OCTET_STRING, "x"), want, "input={input:02x?}");
        }
    }

    #[test]
    fn any_reads_the_tag_it_finds() {
        let mut reader = Reader::new(&[0x13, 0x01, b'a', 0x0c, 0x00]);
        assert_eq!(reader.any("x"), Ok((PRINTABLE_STRING, &b"a"[..])));
        assert_eq!(reader.any("x"), Ok((UTF8_STRING, &b""[..])));
        assert!(reader.is_empty());
        assert_eq!(reader.any("x"), Err(Invalid("x")));
    }
}
