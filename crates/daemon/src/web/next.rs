//! Where a person goes once signed in: the page they were headed to (`/signin?next=…`),
//! only ever a page of this site.
//!
//! Checking the text (`starts with one slash`) is not enough: a browser reads `/\evil`,
//! `/<TAB>/evil` or `\/evil` as `//evil`, an address on another host. So `next` is resolved
//! the way a browser resolves a link on the page (WHATWG URL parsing, which also drops tabs
//! and newlines and reads backslashes as slashes), kept only if that stays on this origin,
//! and given back re-serialised from the parsed URL, never as the text that came in.

use url::Url;

/// Stands in for the page's own origin: the name does not matter, only whether `next`
/// resolved against it stays on it. `.invalid` can never be a real host.
const HERE: &str = "http://lifeboat.invalid/";

/// The path and query `next` leads to on this site, or `/` when it leads anywhere else
/// (another host, another scheme, `javascript:`) or back to the sign-in page.
pub fn destination(next: &str) -> String {
    let home = || "/".to_string();
    let Ok(here) = Url::parse(HERE) else {
        return home();
    };
    let Ok(to) = here.join(next) else {
        return home();
    };
    if to.origin() != here.origin() {
        return home();
    }
    let path = to.path();
    // A path of `//host/…` (from `/.//host`, say) would be a link to that host once it is
    // written out on its own.
    if !path.starts_with('/') || path.starts_with("//") || path == "/signin" || path.starts_with("/signin/") {
        return home();
    }
    match to.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

/// `next` from a query string (`next=…&…`), decoded as the browser encoded it.
pub fn from_query(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "next").map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_this_site_are_kept_with_their_query() {
        assert_eq!(destination("/"), "/");
        assert_eq!(destination("/schedules"), "/schedules");
        assert_eq!(destination("/backups/0123abcd?location=local"), "/backups/0123abcd?location=local");
        // Already-encoded text stays encoded: a path on this site, not a backslash.
        assert_eq!(destination("/%5Cevil.example/"), "/%5Cevil.example/");
        assert_eq!(destination("/a b"), "/a%20b");
        // The same scheme without slashes is a relative link (to a page on this site).
        assert_eq!(destination("http:evil.example"), "/evil.example");
    }

    #[test]
    fn anything_that_leaves_the_site_goes_home() {
        for trick in [
            "//evil.example",
            "//evil.example/x?y",
            "/\\evil.example/",
            "\\/evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/.//evil.example",
            "https://evil.example/",
            "https:/evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "/signin",
            "/signin?next=/",
        ] {
            assert_eq!(destination(trick), "/", "{trick:?}");
        }
    }

    #[test]
    fn next_is_read_from_the_query_as_a_browser_encodes_it() {
        assert_eq!(from_query(Some("next=%2Fbackups%3Fa%3D1")).as_deref(), Some("/backups?a=1"));
        assert_eq!(from_query(Some("a=1&next=/%5Cevil.example/")).as_deref(), Some("/\\evil.example/"));
        assert_eq!(from_query(Some("a=1")), None);
        assert_eq!(from_query(None), None);
    }
}
