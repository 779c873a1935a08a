//! The Pingora server and its transport: the client listener and its connection limits, the
//! admin listener, and the background service; the proxy's hooks live in `proxy`.

pub(crate) mod admin;
pub(crate) mod background;
pub(crate) mod connections;
pub mod listener;
pub mod status;

use crate::config::Config;
use crate::proxy::VeniceProxy;
use crate::state::AppState;
use admin::AdminApp;
use background::Refresher;
use connections::Guarded;
use listener::ClientListener;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::sync::Arc;

/// A shutdown signal for a server run in-process (soak, tests): a fast shutdown once notified.
pub struct Stop(pub Arc<tokio::sync::Notify>);

#[async_trait::async_trait]
impl pingora::server::ShutdownSignalWatch for Stop {
    async fn recv(&self) -> pingora::server::ShutdownSignal {
        self.0.notified().await;
        pingora::server::ShutdownSignal::FastShutdown
    }
}

/// Worker threads by default: the cores this process may use. The standard library counts
/// CPU affinity and cgroup CPU quotas (a Kubernetes CPU limit), not the node's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Raises the open-file limit to its hard maximum: every stream holds two sockets (client and
/// upstream), and the usual soft limit of 1,024 would cap the proxy near 500 streams.
#[allow(unsafe_code)]
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack struct they fill or read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{path}: {reason}")]
    PingoraConf { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Setup(#[from] crate::config::SetupError),
}

/// Pingora's own settings: from `conf/pingora.yaml` when given, else defaults with a short
/// grace period (Pingora's 300 s default outlives Kubernetes' 30 s). `threads: 0` (and the
/// default) means `default_threads()`.
pub fn pingora_conf(
    path: Option<&std::path::Path>,
    config: &Config,
) -> Result<ServerConf, StartError> {
    let mut conf = match path {
        Some(p) => ServerConf::load_from_yaml(p.to_string_lossy().as_ref()).map_err(|e| {
            StartError::PingoraConf {
                path: p.display().to_string(),
                reason: e.to_string(),
            }
        })?,
        None => ServerConf {
            grace_period_seconds: Some(20),
            graceful_shutdown_timeout_seconds: Some(5),
            threads: 0,
            ..ServerConf::default()
        },
    };
    if conf.threads == 0 {
        conf.threads = default_threads();
    }
    conf.ca_file = config
        .venice
        .ca_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    Ok(conf)
}

/// A ready-to-run server and the state its services share.
pub fn build(config: Config, conf: ServerConf) -> Result<(Server, Arc<AppState>), StartError> {
    let listen = config.server.listen;
    let admin = config.server.admin_listen;
    // Pingora retries a taken port for half a minute and then panics in a service thread
    // while the process lives on; fail at once instead.
    let taken = |addr, source| StartError::Listen { addr, source };
    if let Some(addr) = admin {
        std::net::TcpListener::bind(addr).map_err(|e| taken(addr, e))?;
    }
    let state = AppState::new(config)?;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    // Pingora's HTTP proxy behind the connection cap and header deadline it lacks.
    let app = pingora::proxy::http_proxy(&server.configuration, VeniceProxy::new(state.clone()));
    let limits = &state.config.server;
    let guarded = Guarded::new(app, limits.max_connections, limits.header_read_timeout);
    let proxy =
        ClientListener::bind("venice-e2ee-proxy", listen, guarded).map_err(|e| taken(listen, e))?;
    server.add_service(proxy);
    if let Some(addr) = admin {
        let mut service = Service::new("admin".into(), AdminApp::new(state.clone()));
        service.add_tcp(&addr.to_string());
        server.add_service(service);
    }
    server.add_service(background_service(
        "attestation refresh",
        Refresher::new(state.clone()),
    ));
    Ok((server, state))
}

/// Serves `config` until the process is told to stop: the file-descriptor limit raised, the
/// Pingora settings from `pingora_conf` (a YAML path) or defaults.
pub fn run(config: Config, pingora_conf_path: Option<&std::path::Path>) -> Result<(), StartError> {
    let (server, state) = prepare(config, pingora_conf_path)?;
    serve(server, state)
}

/// The server `run` serves, built (its configuration read, its listeners bound) but not yet
/// serving: the file-descriptor limit raised, Pingora's settings from `pingora_conf_path`.
pub fn prepare(
    config: Config,
    pingora_conf_path: Option<&std::path::Path>,
) -> Result<(Server, Arc<AppState>), StartError> {
    raise_fd_limit();
    let conf = pingora_conf(pingora_conf_path, &config)?;
    build(config, conf)
}

/// Serves a prepared server until the process is told to stop.
pub fn serve(server: Server, state: Arc<AppState>) -> ! {
    let phases = server.watch_execution_phase();
    std::thread::spawn(move || exit_once_drained(phases, &state));
    server.run_forever()
}

/// After SIGTERM Pingora closes the listeners and then sleeps the whole grace period, busy
/// or not: this ends the process as soon as no request is in flight, and otherwise leaves
/// the streams their grace period (Pingora then stops as usual).
fn exit_once_drained(
    mut phases: tokio::sync::broadcast::Receiver<pingora::server::ExecutionPhase>,
    state: &AppState,
) {
    use pingora::server::ExecutionPhase;
    loop {
        match phases.blocking_recv() {
            Ok(ExecutionPhase::ShutdownGracePeriod) => break,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
    let started = std::time::Instant::now();
    while state.requests_in_flight() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    log::info!(
        "no request in flight {} ms after SIGTERM: exiting before the grace period ends",
        started.elapsed().as_millis()
    );
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_default_to_the_cores_the_process_may_use() {
        let c = Config::default();
        assert_eq!(pingora_conf(None, &c).unwrap().threads, default_threads());
        let dir = std::env::temp_dir().join(format!("pingora-conf-{}.yaml", std::process::id()));
        for (yaml, expected) in [
            ("version: 1\nthreads: 0\n", default_threads()),
            ("version: 1\nthreads: 3\n", 3),
        ] {
            std::fs::write(&dir, yaml).unwrap();
            assert_eq!(
                pingora_conf(Some(&dir), &c).unwrap().threads,
                expected,
                "{yaml}"
            );
        }
        let _ = std::fs::remove_file(&dir);
        assert!(default_threads() >= 1);
    }
}
