//! The page's files, built into the binary: no CDN, no fonts from elsewhere, nothing to
//! install beside `lifeboat`.

pub struct Asset {
    pub name: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Served without a session: what the sign-in page needs.
    pub public: bool,
}

macro_rules! asset {
    ($name:literal, $type:expr, $public:literal) => {
        Asset { name: $name, body: include_bytes!(concat!("../../web/", $name)), content_type: $type, public: $public }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

pub const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8", true),
    asset!("icon.svg", "image/svg+xml", true),
    asset!("signin.js", JS, true),
    asset!("app.js", JS, false),
    asset!("api.js", JS, false),
    asset!("ui.js", JS, false),
    asset!("home.js", JS, false),
    asset!("backup.js", JS, false),
    asset!("files.js", JS, false),
    asset!("schedules.js", JS, false),
    asset!("history.js", JS, false),
    asset!("welcome.js", JS, false),
];

pub const APP_PAGE: &str = include_str!("../../web/index.html");
pub const SIGNIN_PAGE: &str = include_str!("../../web/signin.html");

pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
