//! The operator console at `/console`, end to end in a real headless Chromium driven over
//! WebDriver (chromedriver): each test starts keygate, its own chromedriver on a loopback port
//! and a browser with a fresh profile, and works the pages as an operator would, checking the
//! outcome where it matters (`/v1/token`, `/v1/me/permissions`) over HTTP.
//!
//! Chromium and chromedriver are found as `chromium` and `chromedriver` on `PATH`, or where the
//! `CHROMIUM` and `CHROMEDRIVER` variables say. Without them the tests say so on standard error
//! and pass without running, unless `KEYGATE_BROWSER_TESTS=required` makes that an error.
//!
//! The harness below is what the test files share: finding the browser, starting and stopping
//! it, and the few page actions the tests are written in.

mod audit;
mod invitation;
mod keys;
mod login;
mod organizations;
mod screenshots;
mod signing_keys;
mod users;
mod webhooks;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::helpers::{ChildGuard, TestApp};

/// `required`: a machine without Chromium fails the browser tests instead of skipping them.
pub const BROWSER_TESTS_VAR: &str = "KEYGATE_BROWSER_TESTS";

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// A desktop window and a phone's, in CSS pixels of the page's viewport.
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// The programs the browser tests run.
#[derive(Clone, Debug)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// Chromium and chromedriver, or `None` (after saying why, loudly) when the browser tests
/// cannot run here; with `KEYGATE_BROWSER_TESTS=required`, their absence fails the test.
pub fn tools() -> Option<Tools> {
    let chromium = program("CHROMIUM", "chromium");
    let chromedriver = program("CHROMEDRIVER", "chromedriver");
    let missing: Vec<String> = [("CHROMIUM", &chromium), ("CHROMEDRIVER", &chromedriver)]
        .into_iter()
        .filter_map(|(var, found)| found.as_ref().err().map(|what| format!("{what} ({var})")))
        .collect();
    if missing.is_empty() {
        return Some(Tools {
            chromium: chromium.unwrap(),
            chromedriver: chromedriver.unwrap(),
        });
    }
    let why = format!(
        "console browser tests need chromium and chromium-driver (apt-get install chromium \
         chromium-driver); not found: {}",
        missing.join(", ")
    );
    let required = std::env::var(BROWSER_TESTS_VAR).is_ok_and(|v| v == "required");
    assert!(!required, "{BROWSER_TESTS_VAR}=required, but {why}");
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to the process's standard error: the test harness captures `eprintln!`
        // of passing tests, and this must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             SKIPPED: {why}; set {BROWSER_TESTS_VAR}=required to make this an error\n\
             ************************************************************************\n"
        );
    });
    None
}

/// The program `var` names (a path, or a name to look up on `PATH`), else `name` on `PATH`.
fn program(var: &str, name: &str) -> Result<PathBuf, String> {
    let wanted = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| name.to_owned());
    let candidates: Vec<PathBuf> = if wanted.contains('/') {
        vec![PathBuf::from(&wanted)]
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(&wanted))
            .collect()
    };
    candidates
        .into_iter()
        .find(|path| is_executable(path))
        .ok_or(wanted)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Light or dark, as the operating system would ask a page for (`prefers-color-scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// chromedriver, serving on a loopback port of its own choosing, in a process group of its
/// own with the browsers it starts: dropping it kills them all, on every path out of a test.
struct Driver {
    child: ChildGuard,
    port: u16,
    log: Arc<Mutex<String>>,
}

/// What chromedriver prints once it listens; the port follows.
const DRIVER_READY: &str = "started successfully on port ";

impl Driver {
    fn start(tools: &Tools) -> Driver {
        let mut child = ChildGuard::spawn(
            Command::new(&tools.chromedriver)
                .arg("--port=0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0),
        );
        let log = Arc::new(Mutex::new(String::new()));
        let (ready, port) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for stream in streams {
            let (log, ready) = (log.clone(), ready.clone());
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stream);
                let mut line = String::new();
                while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if let Some((_, rest)) = line.split_once(DRIVER_READY) {
                        let digits: String =
                            rest.chars().take_while(char::is_ascii_digit).collect();
                        let _ = ready.send(digits.parse::<u16>().unwrap_or(0));
                    }
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        drop(ready);
        let port = port.recv_timeout(Duration::from_secs(60)).unwrap_or(0);
        assert!(
            port != 0,
            "chromedriver did not start; it printed:\n{}",
            log.lock().unwrap()
        );
        Driver { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Ends a WebDriver session without the async client (which may be gone): its browser
    /// quits and writes its profile.
    fn end_session(&self, session: &str) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every browser process it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap();
            let tail: String = log.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            let _ = writeln!(
                std::io::stderr(),
                "chromedriver's last lines (newest first):\n{tail}"
            );
        }
    }
}

/// A headless Chromium with a fresh profile, on the console of one keygate.
pub struct Browser {
    client: Option<Client>,
    session: String,
    base: String,
    driver: Driver,
    profile: tempfile::TempDir,
    pub theme: Theme,
}

impl Browser {
    /// A desktop-sized browser in the light theme, on `app`.
    pub async fn open(tools: &Tools, app: &TestApp) -> Browser {
        Browser::open_with(tools, app, Theme::Light, DESKTOP).await
    }

    pub async fn open_with(
        tools: &Tools,
        app: &TestApp,
        theme: Theme,
        size: (u32, u32),
    ) -> Browser {
        Browser::launch(tools, app, theme, size, true).await
    }

    /// A desktop-sized browser whose pages run no script (as with JavaScript turned off in
    /// its settings); the tests' own scripts still run.
    pub async fn open_without_javascript(tools: &Tools, app: &TestApp) -> Browser {
        Browser::launch(tools, app, Theme::Light, DESKTOP, false).await
    }

    async fn launch(
        tools: &Tools,
        app: &TestApp,
        theme: Theme,
        (width, height): (u32, u32),
        javascript: bool,
    ) -> Browser {
        let driver = Driver::start(tools);
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-crash-reporter".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        if theme == Theme::Dark {
            // Blink's preferred colour scheme: 0 is dark, 1 light.
            args.push("--blink-settings=preferredColorScheme=0".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "unhandledPromptBehavior": "ignore",
            // A page or a script that hangs fails the test instead of stalling it.
            "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
            // Kept for `console_log`: what pages write to the console, refusals included.
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
            },
        });
        let mut capabilities = capabilities;
        if !javascript {
            // What "Don't allow sites to use JavaScript" sets; WebDriver's own scripts run.
            capabilities["goog:chromeOptions"]["prefs"] =
                json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no browser session: {e}; chromedriver printed:\n{}",
                    driver.log.lock().unwrap()
                )
            });
        let session = client
            .session_id()
            .await
            .expect("the session's id")
            .expect("a session");
        let browser = Browser {
            client: Some(client),
            session,
            base: app.address.clone(),
            driver,
            profile,
            theme,
        };
        browser.resize(width, height).await;
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Makes the page's viewport `width` × `height` CSS pixels (a window is larger than its
    /// viewport by what the browser draws around the page).
    pub async fn resize(&self, width: u32, height: u32) {
        // A loaded machine may report the old size for a moment after a resize: try again
        // until the page has been laid out anew.
        for _ in 0..20 {
            self.try_resize(width, height).await;
            if self.viewport().await == (width, height) {
                return;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            self.viewport().await,
            (width, height),
            "the viewport takes the size asked for"
        );
    }

    /// [`Browser::resize`] as far as the browser's screen allows (a page taller than the
    /// screen gets the screen's height).
    async fn try_resize(&self, width: u32, height: u32) {
        let client = self.client();
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let viewport = self.viewport().await;
        let (extra_w, extra_h) = (
            width.saturating_sub(viewport.0),
            height.saturating_sub(viewport.1),
        );
        if (extra_w, extra_h) != (0, 0) {
            client
                .set_window_size(width + extra_w, height + extra_h)
                .await
                .expect("window size");
        }
    }

    pub async fn viewport(&self) -> (u32, u32) {
        let size = self
            .js("return [window.innerWidth, window.innerHeight];")
            .await;
        let dimension = |i: usize| size[i].as_u64().expect("a size") as u32;
        (dimension(0), dimension(1))
    }

    /// Opens a page of this keygate, such as `/console/keys`.
    pub async fn goto(&self, path: &str) {
        self.client()
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    }

    pub async fn reload(&self) {
        self.client().refresh().await.expect("reload");
    }

    /// Goes back a page, as the browser's button does, and waits until that page is shown.
    pub async fn back(&self) {
        self.js("window.__keygateLeaving = true;").await;
        self.client().back().await.expect("back");
        self.wait_for_next_page("going back").await;
    }

    /// Goes forward a page, as the browser's button does, and waits until that page is shown.
    pub async fn forward(&self) {
        self.js("window.__keygateLeaving = true;").await;
        self.client().forward().await.expect("forward");
        self.wait_for_next_page("going forward").await;
    }

    /// Where the browser is: the path and query of its address.
    pub async fn path(&self) -> String {
        let url = self.client().current_url().await.expect("the address");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The element `css` selects, once the page shows it.
    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .client()
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path_or_unknown().await),
        }
    }

    /// Every element `css` selects on the page as it is.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .expect("a query")
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The text `css` shows (as a reader sees it).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// The text of the whole page.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Types `value` into the field `css`, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("typing");
    }

    /// Chooses the option with `value` in the `<select>` `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {css}: {e}"));
    }

    /// Clicks `css`, without waiting for anything.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks `css` (a submit button or a link) and waits until the next page has loaded.
    pub async fn follow(&self, css: &str) {
        self.js("window.__keygateLeaving = true;").await;
        self.click(css).await;
        self.wait_for_next_page(css).await;
    }

    /// Waits for a page whose window is new. A page the browser restores from its
    /// back/forward cache keeps its window, and with it the mark set before leaving it: such a
    /// page counts only once the console's script has loaded it afresh.
    async fn wait_for_next_page(&self, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            // A script error means the old page is going away: keep waiting.
            let arrived = self
                .client()
                .execute(
                    "return window.__keygateLeaving === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .is_ok_and(|v| v == Value::Bool(true));
            if arrived {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no page came after {what} (still on {})",
                self.path_or_unknown().await
            );
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn path_or_unknown(&self) -> String {
        match self.client().current_url().await {
            Ok(url) => url.to_string(),
            Err(_) => "an unknown page".to_owned(),
        }
    }

    /// Runs `script` in the page and answers what it returns.
    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, vec![]).await
    }

    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// What pages wrote to the browser's console since the last call, as (level, message):
    /// script errors, and every request or script their Content-Security-Policy refused.
    pub async fn console_log(&self) -> Vec<(String, String)> {
        let url = format!("{}/session/{}/se/log", self.driver.url(), self.session);
        let log: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .and_then(|response| response.error_for_status())
            .expect("chromedriver's log of the browser")
            .json()
            .await
            .expect("the log as JSON");
        log["value"]
            .as_array()
            .unwrap_or_else(|| panic!("a list of entries: {log}"))
            .iter()
            .map(|entry| {
                let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
                (field("level"), field("message"))
            })
            .collect()
    }

    /// `css`'s element as a script argument.
    pub async fn element_json(&self, css: &str) -> Value {
        serde_json::to_value(self.find(css).await).expect("an element reference")
    }

    /// Lets the pages read the clipboard, as a user who allowed it would: to check what a copy
    /// button copied.
    pub async fn allow_clipboard_reading(&self) {
        self.client()
            .issue_cmd(SetPermission {
                name: "clipboard-read",
                state: "granted",
            })
            .await
            .expect("the clipboard may be read");
    }

    /// The text the clipboard holds, as the page reads it.
    pub async fn clipboard(&self) -> String {
        let read = self
            .client()
            .execute_async(
                "const done = arguments[0];
                 navigator.clipboard.readText().then(done, e => done('unreadable: ' + e));",
                vec![],
            )
            .await
            .expect("the clipboard is read");
        read.as_str().expect("text").to_owned()
    }

    /// Whether a dialog (`alert`, `confirm`) is open.
    pub async fn dialog_open(&self) -> bool {
        match self.client().get_alert_text().await {
            Ok(_) => true,
            Err(e) if e.is_no_such_alert() => false,
            Err(other) => panic!("asking for a dialog: {other}"),
        }
    }

    /// Logs in on the log-in page the browser is on.
    pub async fn submit_login(&self, email: &str, password: &str) {
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.follow("#log-in").await;
    }

    /// Opens the log-in page and logs in; the browser ends on the key list.
    pub async fn log_in(&self, email: &str, password: &str) {
        self.goto("/console/login").await;
        self.submit_login(email, password).await;
        assert_eq!(self.path().await, "/console/keys", "logged in as {email}");
        assert_eq!(self.text("#current-user").await, email);
    }

    /// Saves the whole page (as tall as its content, as wide as the window) as
    /// `console-screenshots/NAME-THEME.png` in the target directory; answers the file.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // No caret or focus ring of the last field typed into.
        self.js("if (document.activeElement) document.activeElement.blur();")
            .await;
        let (width, height) = self.viewport().await;
        let content = self
            .js("return Math.ceil(document.documentElement.scrollHeight);")
            .await
            .as_u64()
            .expect("a height") as u32;
        if content > height {
            // As tall as the content, or the screen if that is less.
            self.try_resize(width, content).await;
        }
        let png = self.client().screenshot().await.expect("a screenshot");
        if content > height {
            self.resize(width, height).await;
        }
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let file = dir.join(format!("{name}-{}.png", self.theme.name()));
        // Written whole, then renamed: two tests saving the same page never leave half a file.
        let partial = dir.join(format!(
            ".{name}-{}.{}.part",
            self.theme.name(),
            std::process::id()
        ));
        std::fs::write(&partial, &png).expect("the screenshot is written");
        std::fs::rename(&partial, &file).expect("the screenshot is saved");
        file
    }

    /// Ends the session (the browser quits) and answers every address the browser visited, as
    /// its history recorded them: redirects, form posts and all.
    pub async fn close(mut self) -> Vec<String> {
        if let Some(client) = self.client.take() {
            client.close().await.expect("the browser quits");
        }
        visited(self.profile.path())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.client.take().is_some() {
            // A test that failed: end the session while chromedriver lives, then the driver
            // (dropped after this) kills whatever is left.
            self.driver.end_session(&self.session);
        }
    }
}

/// WebDriver's Set Permission (from the Permissions specification), which fantoccini does not
/// offer: the state a permission of the page's origin takes.
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
    state: &'static str,
}

impl fantoccini::wd::WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/permissions",
            session.expect("a session")
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.name }, "state": self.state });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

/// The addresses a profile's history holds (its `urls` table), read once the browser quit.
fn visited(profile: &Path) -> Vec<String> {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct Visited {
        #[diesel(sql_type = Text)]
        url: String,
    }

    let history = profile.join("Default").join("History");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = SqliteConnection::establish(&history.to_string_lossy())
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query("SELECT url FROM urls ORDER BY id")
                    .load::<Visited>(&mut conn)
                    .map_err(|e| e.to_string())
            });
        match read {
            Ok(rows) => return rows.into_iter().map(|r| r.url).collect(),
            Err(e) if Instant::now() > deadline => panic!("the browser's history: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `console-screenshots/` in the target directory the tests were built in.
pub fn screenshot_dir() -> PathBuf {
    let keygate = Path::new(env!("CARGO_BIN_EXE_keygate"));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        // `<target>/<profile>/keygate`
        _ => keygate
            .parent()
            .and_then(Path::parent)
            .expect("the binary is in the target directory")
            .to_path_buf(),
    };
    target.join("console-screenshots")
}

/// Asserts that no address the browser visited holds `secret`, and that the history read is
/// not empty (so the check means something).
pub fn assert_never_in_an_address(visited: &[String], secrets: &[&str]) {
    assert!(!visited.is_empty(), "the browser's history is empty");
    for url in visited {
        for secret in secrets {
            assert!(!url.contains(secret), "a secret in an address: {url}");
        }
    }
}
