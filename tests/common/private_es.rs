//! A private single-node OpenSearch for the tests that must stop the server: started from the
//! jars and the launcher `scripts/services.sh up` fetched and compiled (in `.cache/maven/
//! opensearch`), on free ports, with its own data directory. The shared one on 9200 is never
//! stopped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferroflow_engine::es::{EsClient, EsSettings};

use super::index::{free_port, tmpdir};
use super::repo;

pub struct PrivateOpenSearch {
    pub port: u16,
    dir: PathBuf,
    libs: PathBuf,
    child: Option<Child>,
}

impl PrivateOpenSearch {
    /// `Err(reason)` when Java, the jars or the compiled launcher are not there.
    pub fn new(tag: &str) -> Result<PrivateOpenSearch, String> {
        let cache = std::env::var_os("FERROFLOW_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".cache"));
        let libs = cache.join("maven/opensearch");
        if !libs.join("classes/Launcher.class").is_file() || !libs.join("libs").is_dir() {
            return Err(format!(
                "no OpenSearch jars / launcher in {} (scripts/services.sh up fetches them)",
                libs.display()
            ));
        }
        if Command::new("java").arg("-version").output().is_err() {
            return Err("no java on PATH".into());
        }
        let dir = tmpdir(&format!("opensearch-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["home/plugins", "home/modules", "config", "data", "logs"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        let (port, transport) = (free_port(), free_port());
        std::fs::write(
            dir.join("config/opensearch.yml"),
            format!(
                "cluster.name: ferroflow-private-{tag}\nnode.name: private-1\npath.data: {data}\n\
                 path.logs: {logs}\nnetwork.host: 127.0.0.1\nhttp.port: {port}\n\
                 transport.port: {transport}\ndiscovery.type: single-node\n\
                 cluster.routing.allocation.disk.threshold_enabled: false\n\
                 action.auto_create_index: true\n",
                data = dir.join("data").display(),
                logs = dir.join("logs").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("config/log4j2.properties"),
            "status = error\nappender.console.type = Console\nappender.console.name = console\n\
             appender.console.layout.type = PatternLayout\n\
             appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n\n\
             rootLogger.level = warn\nrootLogger.appenderRef.console.ref = console\n",
        )
        .map_err(|e| e.to_string())?;
        Ok(PrivateOpenSearch {
            port,
            dir,
            libs,
            child: None,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> EsClient {
        EsClient::new(
            &EsSettings {
                urls: vec![self.url()],
                timeout: Duration::from_secs(10),
                ..Default::default()
            },
            1,
        )
        .unwrap()
    }

    /// Starts the node (on the same data when restarted) and waits, bounded, for yellow.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let cp = format!(
            "{}/libs/*:{}/classes",
            self.libs.display(),
            self.libs.display()
        );
        let child = Command::new("java")
            .args([
                "-Xms512m",
                "-Xmx512m",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
                "-Dfile.encoding=UTF-8",
                "-Dio.netty.noUnsafe=true",
                "-Dio.netty.noKeySetOptimization=true",
                "-Dio.netty.recycler.maxCapacityPerThread=0",
                "-Dlog4j.shutdownHookEnabled=false",
                "-Dlog4j2.disable.jmx=true",
                "-Djava.locale.providers=SPI,COMPAT",
            ])
            .arg(format!(
                "-Djava.io.tmpdir={}",
                self.dir.join("home").display()
            ))
            .args(["-cp", &cp, "Launcher"])
            .arg(self.dir.join("home"))
            .arg(self.dir.join("config"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let c = self.client();
        let end = Instant::now() + Duration::from_secs(240);
        while Instant::now() < end {
            if let Some(ch) = self.child.as_mut() {
                if let Ok(Some(st)) = ch.try_wait() {
                    panic!(
                        "private OpenSearch exited ({st}): {}",
                        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                    );
                }
            }
            let healthy = c
                .request(
                    "GET",
                    "/_cluster/health?wait_for_status=yellow&timeout=2s",
                    "application/json",
                    None,
                    false,
                )
                .is_ok_and(|r| r.status == 200);
            if healthy {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "private OpenSearch not healthy in 240 s: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// SIGKILL: the node dies without a clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Documents in `<prefix>-*` after a refresh (0 when the node does not answer).
    pub fn count(&self, prefix: &str) -> u64 {
        super::index::count_at(&self.client(), prefix)
    }

    /// Waits until `<prefix>-*` holds `want` documents or the time is up; the count.
    pub fn wait_count(&self, prefix: &str, want: u64, timeout: Duration) -> u64 {
        super::index::wait_count_at(&self.client(), prefix, want, timeout, None)
    }
}

impl Drop for PrivateOpenSearch {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("FERROFLOW_KEEP_TEST_DATA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
