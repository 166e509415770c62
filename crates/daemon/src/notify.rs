//! Optional notifications of events: a webhook (JSON POST) and a command (`$LIFEBOAT_EVENT`
//! holds the JSON). Failures are logged, never fatal, and never block the caller.

use lifeboat_engine::config::DaemonConfig;

use crate::events::Event;

pub fn send(cfg: &DaemonConfig, event: &Event) {
    let json = serde_json::to_string(event).unwrap_or_default();
    if let Some(url) = cfg.webhook.clone() {
        let body = json.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(rt) = runtime else { return };
            lifeboat_storage::tls::install_provider();
            let sent = rt.block_on(async {
                reqwest::Client::new()
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(std::time::Duration::from_secs(20))
                    .send()
                    .await
            });
            if let Err(e) = sent {
                tracing::warn!("webhook {url}: {e}");
            }
        });
    }
    if let Some(cmd) = cfg.notify_command.clone() {
        std::thread::spawn(move || {
            let status = std::process::Command::new("sh").arg("-c").arg(&cmd).env("LIFEBOAT_EVENT", json).status();
            if let Err(e) = status {
                tracing::warn!("notify_command: {e}");
            }
        });
    }
}
