//! Headless Firefox with Marionette on, in a fresh profile, in its own
//! process group: dropping [`Firefox`] kills the whole group (the main
//! process and its content processes), whatever the test did.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The preferences of the fresh profile: Marionette on a port Firefox picks
/// (written to `MarionetteActivePort`), and a quiet, local browser: no
/// first-run or welcome pages, no updates, telemetry, studies, safe
/// browsing, remote settings, captive-portal or connectivity checks, DNS
/// prefetching or speculative connections. In case something still tries
/// to go out, every address but loopback is sent to a proxy at
/// 127.0.0.1:1, where nothing listens. Mostly what geckodriver and
/// Mozilla's own test profiles set.
const USER_JS: &str = r#"user_pref("marionette.port", 0);
user_pref("app.normandy.api_url", "");
user_pref("app.normandy.enabled", false);
user_pref("app.shield.optoutstudies.enabled", false);
user_pref("app.update.auto", false);
user_pref("app.update.checkInstallTime", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.backup.enabled", false);
user_pref("browser.crashReports.unsubmittedCheck.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.newtabpage.activity-stream.feeds.system.topstories", false);
user_pref("browser.newtabpage.activity-stream.showSponsoredTopSites", false);
user_pref("browser.pagethumbnails.capturing_disabled", true);
user_pref("browser.region.network.url", "");
user_pref("browser.region.update.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.downloads.remote.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.passwords.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.search.region", "US");
user_pref("browser.search.update", false);
user_pref("browser.sessionstore.resume_from_crash", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage", "about:blank");
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.startup.page", 0);
user_pref("browser.tabs.warnOnClose", false);
user_pref("browser.topsites.contile.enabled", false);
user_pref("browser.uitour.enabled", false);
user_pref("browser.warnOnQuit", false);
user_pref("captivedetect.canonicalURL", "");
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.policy.dataSubmissionPolicyBypassNotification", true);
user_pref("dom.ipc.reportProcessHangs", false);
user_pref("extensions.autoDisableScopes", 0);
user_pref("extensions.blocklist.enabled", false);
user_pref("extensions.enabledScopes", 5);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.installDistroAddons", false);
user_pref("extensions.systemAddon.update.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("extensions.update.notifyUser", false);
user_pref("focusmanager.testmode", true);
user_pref("general.useragent.updates.enabled", false);
user_pref("geo.provider.network.url", "");
user_pref("hangmonitor.timeout", 0);
user_pref("identity.fxaccounts.enabled", false);
user_pref("media.gmp-gmpopenh264.enabled", false);
user_pref("media.gmp-manager.updateEnabled", false);
user_pref("media.gmp-manager.url", "");
user_pref("messaging-system.rsexperimentloader.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("network.predictor.enabled", false);
user_pref("network.prefetch-next", false);
user_pref("network.proxy.type", 1);
user_pref("network.proxy.http", "127.0.0.1");
user_pref("network.proxy.http_port", 1);
user_pref("network.proxy.share_proxy_settings", true);
user_pref("network.proxy.allow_hijacking_localhost", false);
user_pref("network.proxy.no_proxies_on", "localhost, 127.0.0.1");
user_pref("network.trr.mode", 5);
user_pref("nimbus.rollouts.enabled", false);
user_pref("security.certerrors.mitm.priming.enabled", false);
user_pref("services.settings.server", "data:,#remote-settings-dummy/v1");
user_pref("telemetry.fog.test.localhost_port", -1);
user_pref("toolkit.startup.max_resumed_crashes", -1);
user_pref("toolkit.telemetry.archive.enabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("toolkit.telemetry.server", "");
user_pref("toolkit.telemetry.unified", false);
"#;

/// How long Firefox may take to start and open Marionette's port (a
/// loaded 2-core machine takes a few seconds).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running headless Firefox; killed with all its processes when dropped.
pub struct Firefox {
    child: Child,
    /// Marionette's port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
    /// Set once every process of the group ended and the main one was
    /// reaped: then there is nothing to kill.
    reaped: bool,
}

impl Firefox {
    /// Starts `binary` headless with Marionette, in a fresh profile under
    /// `dir` (emptied first; HOME and the XDG folders point there too, so
    /// nothing of the user's is read or written), and waits for the port
    /// it chose. Its output goes to `dir/firefox.log`.
    pub fn start(binary: &Path, dir: &Path) -> Firefox {
        let _ = fs::remove_dir_all(dir);
        let profile = dir.join("profile");
        let home = dir.join("home");
        fs::create_dir_all(&profile).unwrap();
        fs::create_dir_all(&home).unwrap();
        fs::write(profile.join("user.js"), USER_JS).unwrap();
        let log = dir.join("firefox.log");
        let out = fs::File::create(&log).unwrap();
        // setpriv (util-linux) makes the kernel kill Firefox if this test
        // dies without unwinding (SIGKILL from a CI timeout), where the
        // Drop below cannot run.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(binary)
            .args(["--headless", "--marionette", "--no-remote", "--profile"])
            .arg(&profile)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group, so that one signal reaches the content
            // processes too.
            .process_group(0)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            // Without these, headless Firefox hangs at start on a machine
            // with no GPU: software rendering, no WebRender.
            .env("MOZ_HEADLESS", "1")
            .env("MOZ_WEBRENDER", "0")
            .env("MOZ_ACCELERATED", "0")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env("MOZ_CRASHREPORTER_DISABLE", "1");
        crate::ws_support::without_proxies(&mut cmd);
        for var in ["DISPLAY", "WAYLAND_DISPLAY", "no_proxy", "NO_PROXY"] {
            cmd.env_remove(var);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {} (through setpriv): {e}", binary.display()));
        let mut firefox = Firefox {
            child,
            port: 0,
            log,
            reaped: false,
        };
        firefox.port = firefox.wait_for_port(&profile.join("MarionetteActivePort"));
        firefox
    }

    /// Polls for the file Marionette writes its port to once it listens.
    fn wait_for_port(&mut self, file: &Path) -> u16 {
        let end = Instant::now() + START_DEADLINE;
        loop {
            let port = fs::read_to_string(file)
                .ok()
                .and_then(|t| t.trim().parse::<u16>().ok());
            if let Some(port) = port.filter(|&p| p != 0) {
                return port;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "Firefox exited ({status}) before Marionette listened; its output:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "Firefox did not open Marionette's port within {START_DEADLINE:?}; its output:\n{}",
                self.log()
            );
            // A pause between polls of the file.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Everything Firefox wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `deadline`) for every process of Firefox to end by
    /// itself, after Marionette:Quit, and returns the main process's exit
    /// status.
    pub fn wait_exit(mut self, deadline: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + deadline;
        // The main process stays a zombie until reaped, and with it the
        // group id: so the group is watched first, and reaped after.
        loop {
            let left = group_members(self.group());
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < end,
                "Firefox did not quit within {deadline:?} (processes {left:?} left); its output:\n{}",
                self.log()
            );
            // A pause between polls of /proc.
            std::thread::park_timeout(Duration::from_millis(20));
        }
        self.reaped = true;
        self.child.wait().unwrap()
    }

    /// The process group id: the main process's pid.
    pub fn group(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The group before the main process is reaped: while it is not, no
        // other group can take its id.
        let _ = killpg(Pid::from_raw(self.group()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The live processes (not zombies) of process group `group`, from /proc.
pub fn group_members(group: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After "(comm)": state, ppid, pgrp.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
        })
        .collect()
}
