//! Real servers for location tests, on 127.0.0.1 with free ports, stopped when dropped:
//! OpenSSH's sshd (SFTP), SeaweedFS (S3), rclone (WebDAV), and a TCP relay that can cut
//! the line. scripts/test installs them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port no one listens on, taken below the kernel's ephemeral range: a port the kernel
/// hands out (`:0`) is free only until the next outgoing connection takes it as its source,
/// which on a busy test machine happens between choosing it and a server binding it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(32768);
    // Tests of one run take distinct ports; runs side by side start apart by process id.
    let (start, span) = (10_000u64, low.saturating_sub(10_000).max(1000));
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 7919;
        let port = (start + n % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port()
}

fn need(program: &str) -> PathBuf {
    find_program(program)
        .unwrap_or_else(|| panic!("{program} is not installed: run scripts/test, which installs what the tests need"))
}

/// Where a program the tests run is: on PATH, in the system's sbin folders, or in the
/// environment of Python tools that scripts/test keeps (scripts/lib/packages.sh), which a
/// developer's PATH may not name.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let tools = std::env::var_os("LIFEBOAT_TOOLS").map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("lifeboat-test-tools"))
    });
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .chain(tools.map(|t| t.join("venv/bin")))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A server process, killed and reaped on drop.
pub struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Process {
    fn start(name: &'static str, mut cmd: Command, log: PathBuf) -> Process {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process { child, name, log }
    }

    /// Waits until the port accepts connections (or the process dies, which fails the test
    /// with its log).
    fn wait_for(&mut self, port: u16) {
        if let Err(e) = self.try_wait_for(port) {
            panic!("{e}");
        }
    }

    /// [`Process::wait_for`], with the process's death as an error (its log's end).
    fn try_wait_for(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                return Err(format!(
                    "{} exited ({status}):\n{}",
                    self.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            assert!(Instant::now() < deadline, "{} did not listen on {port}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server now (a crash, or the machine going away).
    pub fn kill_now(&self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// OpenSSH's sshd serving SFTP from `root`, logging in the current user with a fresh key.
pub struct Sshd {
    pub process: Process,
    pub port: u16,
    pub key_file: PathBuf,
    pub known_hosts: PathBuf,
    pub user: String,
    dir: PathBuf,
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        let sshd = need("sshd");
        let keygen = need("ssh-keygen");
        std::fs::create_dir_all(dir).unwrap();
        let host_key = dir.join("host_key");
        let key_file = dir.join("client_key");
        for k in [&host_key, &key_file] {
            let st = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(k)
                .status()
                .expect("ssh-keygen");
            assert!(st.success());
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(key_file.with_extension("pub"), &authorized).unwrap();
        let port = free_port();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 Subsystem sftp internal-sftp\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        // sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut cmd = Command::new(sshd);
        cmd.arg("-D").arg("-e").arg("-f").arg(&config);
        let mut process = Process::start("sshd", cmd, dir.join("sshd.log"));
        process.wait_for(port);
        let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let mut fields = host_pub.split_whitespace();
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {} {}\n", fields.next().unwrap(), fields.next().unwrap()),
        )
        .unwrap();
        Sshd { process, port, key_file, known_hosts, user, dir: dir.to_path_buf() }
    }

    /// The `[location.NAME]` keys for a repository in `folder` (absolute) on this server,
    /// reached through `port` (this server's, or a relay's).
    pub fn location_toml(&self, folder: &Path, port: u16) -> String {
        format!(
            "type = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{}\"\npath = \"{}\"\nkey_file = \"{}\"\nknown_hosts = \"{}\"\n",
            self.user,
            folder.display(),
            self.key_file.display(),
            self.known_hosts_for(port).display()
        )
    }

    /// known_hosts naming the server at another port (a relay's).
    pub fn known_hosts_for(&self, port: u16) -> PathBuf {
        if port == self.port {
            return self.known_hosts.clone();
        }
        let text = std::fs::read_to_string(&self.known_hosts).unwrap();
        let line = text.replace(&format!("[127.0.0.1]:{}", self.port), &format!("[127.0.0.1]:{port}"));
        let path = self.dir.join(format!("known_hosts_{port}"));
        std::fs::write(&path, line).unwrap();
        path
    }
}

/// SeaweedFS (master, volume, filer and S3 gateway in one process), with one identity.
pub struct Seaweed {
    pub process: Process,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    filer_port: u16,
}

impl Seaweed {
    pub fn start(dir: &Path) -> Seaweed {
        let weed = need("weed");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let (access_key, secret_key) = ("lifeboat-test-key".to_string(), "lifeboat-test-secret-0123456789".to_string());
        let s3_config = dir.join("s3.json");
        std::fs::write(
            &s3_config,
            format!(
                r#"{{"identities":[{{"name":"lifeboat","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret_key}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        // Eight ports, each free when chosen: should another program take one before the
        // server binds it, the server dies at once, and starts again on eight others.
        let mut attempt = 0;
        let (process, ports) = loop {
            attempt += 1;
            let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
            let mut process =
                Process::start("weed server", Self::command(&weed, dir, &s3_config, &ports), dir.join("weed.log"));
            match process.try_wait_for(ports[6]).and_then(|()| process.try_wait_for(ports[4])) {
                Ok(()) => break (process, ports),
                Err(e) if attempt >= 3 => panic!("{e}"),
                Err(_) => {}
            }
        };
        Seaweed {
            process,
            endpoint: format!("http://127.0.0.1:{}", ports[6]),
            access_key,
            secret_key,
            filer_port: ports[4],
        }
    }

    fn command(weed: &Path, dir: &Path, s3_config: &Path, ports: &[u16]) -> Command {
        let mut cmd = Command::new(weed);
        cmd.arg("server")
            .arg(format!("-dir={}", dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-master.volumeSizeLimitMB=64", "-volume.max=0"])
            // Nothing leaves the loopback: no usage statistics.
            .arg("-master.telemetry=false")
            // Services with fixed default ports would collide between tests; none is needed.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false", "-webdav=false", "-sftp=false"])
            .arg(format!("-master.port={}", ports[0]))
            .arg(format!("-master.port.grpc={}", ports[1]))
            .arg(format!("-volume.port={}", ports[2]))
            .arg(format!("-volume.port.grpc={}", ports[3]))
            .arg(format!("-filer.port={}", ports[4]))
            .arg(format!("-filer.port.grpc={}", ports[5]))
            .arg(format!("-s3.port={}", ports[6]))
            .arg(format!("-s3.port.grpc={}", ports[7]))
            .arg(format!("-s3.config={}", s3_config.display()));
        cmd
    }

    /// Creates a bucket (a folder under the filer's /buckets), waiting until the cluster
    /// can take writes.
    pub fn create_bucket(&mut self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let status = http(self.filer_port, &format!("POST /buckets/{name}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
            if status.is_some_and(|s| (200..300).contains(&s)) {
                // A tiny file proves a volume is assigned.
                let put = http(self.filer_port, &format!("PUT /buckets/{name}/.ready HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"));
                if put.is_some_and(|s| (200..300).contains(&s)) {
                    let _ = http(
                        self.filer_port,
                        &format!(
                            "DELETE /buckets/{name}/.ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                        ),
                    );
                    return;
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.process.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!("SeaweedFS did not become ready:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The filer's HTTP port: objects of a bucket as files under `/buckets/NAME/`, read and
    /// written without S3's signatures (what an attacker with write access could do).
    pub fn filer_port(&self) -> u16 {
        self.filer_port
    }

    pub fn location_toml(&self, bucket: &str, root: &str) -> String {
        format!(
            "type = \"s3\"\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nroot = \"{root}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.endpoint, self.access_key, self.secret_key
        )
    }
}

/// One HTTP/1.1 request; the status code of the answer.
fn http(port: u16, request: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// rclone serving a folder over WebDAV with a user and password.
pub struct Webdav {
    pub process: Process,
    pub url: String,
    pub user: String,
    pub password: String,
    pub root: PathBuf,
}

impl Webdav {
    pub fn start(dir: &Path) -> Webdav {
        let rclone = need("rclone");
        let root = dir.join("dav");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let (user, password) = ("lifeboat".to_string(), "dav-secret-4242".to_string());
        let mut cmd = Command::new(rclone);
        cmd.args(["serve", "webdav"])
            .arg(&root)
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--user", &user, "--pass", &password])
            .arg("--config")
            .arg(dir.join("rclone.conf"));
        let mut process = Process::start("rclone serve webdav", cmd, dir.join("rclone.log"));
        process.wait_for(port);
        Webdav { process, url: format!("http://127.0.0.1:{port}"), user, password, root }
    }

    pub fn location_toml(&self, root: &str) -> String {
        format!(
            "type = \"webdav\"\nurl = \"{}\"\nroot = \"{root}\"\nusername = \"{}\"\npassword = \"{}\"\n",
            self.url, self.user, self.password
        )
    }
}

/// A TCP relay in front of a server that counts the bytes clients send and can cut every
/// connection at once, as a network that goes away does.
pub struct Relay {
    pub port: u16,
    pub sent: Arc<AtomicU64>,
    /// Bytes the server sent back (what a client downloaded).
    pub received: Arc<AtomicU64>,
    /// HTTP requests clients sent (request lines seen going to the server).
    pub requests: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    /// Cut the line once this many bytes were sent.
    cut_after: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            sent: Arc::default(),
            received: Arc::default(),
            requests: Arc::default(),
            cut: Arc::default(),
            cut_after: Arc::new(AtomicU64::new(u64::MAX)),
            conns: Arc::default(),
        };
        let (sent, cut, cut_after, conns) =
            (relay.sent.clone(), relay.cut.clone(), relay.cut_after.clone(), relay.conns.clone());
        let requests = relay.requests.clone();
        let received = relay.received.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                conns.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (sent, cut, cut_after, conns2) = (sent.clone(), cut.clone(), cut_after.clone(), conns.clone());
                let requests = requests.clone();
                std::thread::spawn(move || pump(client, server, Some((sent, cut, cut_after, conns2, requests)), None));
                let received = received.clone();
                std::thread::spawn(move || pump(s2, c2, None, Some(received)));
            }
        });
        relay
    }

    /// Cut every connection, and refuse new ones, once `bytes` more were sent.
    pub fn cut_after(&self, bytes: u64) {
        self.cut_after.store(self.sent.load(Ordering::SeqCst) + bytes, Ordering::SeqCst);
    }

    /// The network is back: new connections reach the server again.
    pub fn reconnect(&self) {
        self.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

type Meter = (Arc<AtomicU64>, Arc<AtomicBool>, Arc<AtomicU64>, Arc<Mutex<Vec<TcpStream>>>, Arc<AtomicU64>);

/// What ends an HTTP/1.1 request line.
const REQUEST_LINE_END: &[u8] = b" HTTP/1.1\r\n";

fn pump(mut from: TcpStream, mut to: TcpStream, meter: Option<Meter>, received: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 * 1024];
    // The end of the previous read, so a request line split between two reads is seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(r) = &received {
            r.fetch_add(n as u64, Ordering::SeqCst);
        }
        if let Some((sent, cut, cut_after, conns, requests)) = &meter {
            if cut.load(Ordering::SeqCst) {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            let seen = tail.windows(REQUEST_LINE_END.len()).filter(|w| *w == REQUEST_LINE_END).count();
            requests.fetch_add(seen as u64, Ordering::SeqCst);
            let keep = tail.len().min(REQUEST_LINE_END.len() - 1);
            tail.drain(..tail.len() - keep);
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= cut_after.load(Ordering::SeqCst) {
                cut.store(true, Ordering::SeqCst);
                for c in conns.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Samba's smbd sharing a folder as `backups`, with the current user (root in CI) given an
/// SMB password in a private password database.
pub struct Smbd {
    pub process: Process,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub share_dir: PathBuf,
}

impl Smbd {
    pub fn start(dir: &Path) -> Smbd {
        let smbd = need("smbd");
        let pdbedit = need("pdbedit");
        for sub in ["run", "lock", "state", "cache", "private", "ncalrpc", "share"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let port = free_port();
        let d = dir.display();
        let config = dir.join("smb.conf");
        std::fs::write(
            &config,
            format!(
                "[global]\n  smb ports = {port}\n  bind interfaces only = yes\n  interfaces = 127.0.0.1\n\
                 pid directory = {d}/run\n  lock directory = {d}/lock\n  state directory = {d}/state\n\
                 cache directory = {d}/cache\n  private dir = {d}/private\n  ncalrpc dir = {d}/ncalrpc\n\
                 log file = {d}/log.%m\n  passdb backend = tdbsam:{d}/private/passdb.tdb\n\
                 server role = standalone server\n  map to guest = never\n  disable netbios = yes\n\
                 server min protocol = SMB2\n  load printers = no\n  printing = bsd\n  printcap name = /dev/null\n\
                 disable spoolss = yes\n[backups]\n  path = {d}/share\n  read only = no\n"
            ),
        )
        .unwrap();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
        let password = "smb-secret-9731".to_string();
        let mut add = Command::new(pdbedit)
            .arg("-s")
            .arg(&config)
            .args(["-a", "-t", "-u", &user])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        add.stdin.take().unwrap().write_all(format!("{password}\n{password}\n").as_bytes()).unwrap();
        assert!(add.wait().unwrap().success(), "pdbedit added the SMB user");
        let mut cmd = Command::new(smbd);
        cmd.args(["-F", "--no-process-group", "--debug-stdout", "-d", "1", "-s"]).arg(&config);
        let mut process = Process::start("smbd", cmd, dir.join("smbd.log"));
        process.wait_for(port);
        Smbd { process, port, user, password, share_dir: dir.join("share") }
    }

    pub fn location_toml(&self, path: &str) -> String {
        format!(
            "type = \"smb\"\nhost = \"127.0.0.1\"\nport = {}\nshare = \"backups\"\npath = \"{path}\"\nusername = \"{}\"\npassword = \"{}\"\n",
            self.port, self.user, self.password
        )
    }
}
