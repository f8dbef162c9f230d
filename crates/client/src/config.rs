//! Where a component finds its apiserver and credentials: `--kubeconfig` (contexts, client
//! certificates, bearer tokens, exec plugins, all through the `kube` crate's loader), `--master`
//! overriding the server, or the in-cluster service-account environment; plus the upstream flags
//! that shape the client (`--kube-api-qps`, `--kube-api-burst`, `--kube-api-content-type`).
//!
//! Errors name the file and what is wrong with it, so a daemon that cannot start says why.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{chain, Error, Result};

/// The client flags every daemon takes, with upstream's names. Defaults differ per daemon (the
/// controller-manager's qps is 20, the scheduler's 50), so they are options resolved by
/// [`ClientArgs::qps_or`] and [`ClientArgs::burst_or`].
#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// Path to a kubeconfig file with authorization and master location information.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long, value_name = "URL")]
    pub master: Option<String>,
    /// QPS to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-qps", value_name = "QPS")]
    pub kube_api_qps: Option<f32>,
    /// Burst to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-burst", value_name = "N")]
    pub kube_api_burst: Option<u32>,
    /// Content type of requests sent to apiserver (only application/json is spoken here).
    #[arg(
        long = "kube-api-content-type",
        value_name = "TYPE",
        default_value = "application/json"
    )]
    pub kube_api_content_type: String,
}

impl ClientArgs {
    pub fn qps_or(&self, default: f32) -> f32 {
        self.kube_api_qps.unwrap_or(default)
    }

    pub fn burst_or(&self, default: u32) -> u32 {
        self.kube_api_burst.unwrap_or(default)
    }

    /// Loads the configuration these flags point at.
    pub async fn load(&self) -> Result<kube::Config> {
        if self.kube_api_content_type != "application/json"
            && !self.kube_api_content_type.starts_with("application/json;")
        {
            return Err(Error::Config(format!(
                "--kube-api-content-type {:?} is not supported: only application/json is spoken",
                self.kube_api_content_type
            )));
        }
        load_config(self.kubeconfig.as_deref(), self.master.as_deref(), None).await
    }
}

/// Loads a configuration as client-go's `BuildConfigFromFlags` does: a kubeconfig file when one is
/// given (its current context, or `context`), with `master` replacing its server; `master` alone
/// for an unauthenticated local server; neither: in-cluster, then `$KUBECONFIG` /
/// `~/.kube/config`.
pub async fn load_config(
    kubeconfig: Option<&Path>,
    master: Option<&str>,
    context: Option<&str>,
) -> Result<kube::Config> {
    let mut config = match (kubeconfig, master) {
        (Some(path), _) => from_kubeconfig_file(path, context).await?,
        (None, Some(master)) => kube::Config::new(parse_server(master)?),
        (None, None) => kube::Config::infer().await.map_err(|err| {
            Error::Config(format!(
                "no --kubeconfig or --master given, and neither the in-cluster environment nor a default kubeconfig is usable: {}",
                chain(&err)
            ))
        })?,
    };
    if let Some(master) = master {
        config.cluster_url = parse_server(master)?;
    }
    Ok(config)
}

/// Reads and resolves one kubeconfig file.
pub async fn from_kubeconfig_file(path: &Path, context: Option<&str>) -> Result<kube::Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::Config(format!("reading kubeconfig {}: {err}", path.display())))?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).map_err(|err| {
        Error::Config(format!(
            "parsing kubeconfig {}: {}",
            path.display(),
            chain(&err)
        ))
    })?;
    if kubeconfig.clusters.is_empty() {
        return Err(Error::Config(format!(
            "kubeconfig {} defines no clusters",
            path.display()
        )));
    }
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        cluster: None,
        user: None,
    };
    // Relative certificate paths in a kubeconfig are relative to the file, as client-go reads them.
    let dir = path.parent().map(Path::to_path_buf);
    let kubeconfig = resolve_relative_paths(kubeconfig, dir.as_deref());
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|err| {
            Error::Config(format!(
                "loading kubeconfig {}: {}",
                path.display(),
                chain(&err)
            ))
        })
}

fn resolve_relative_paths(
    mut kubeconfig: kube::config::Kubeconfig,
    dir: Option<&Path>,
) -> kube::config::Kubeconfig {
    let Some(dir) = dir else {
        return kubeconfig;
    };
    let fix = |path: &mut Option<String>| {
        if let Some(p) = path.as_mut() {
            if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                *p = dir.join(p.as_str()).to_string_lossy().into_owned();
            }
        }
    };
    for cluster in &mut kubeconfig.clusters {
        if let Some(c) = cluster.cluster.as_mut() {
            fix(&mut c.certificate_authority);
        }
    }
    for user in &mut kubeconfig.auth_infos {
        if let Some(a) = user.auth_info.as_mut() {
            fix(&mut a.client_certificate);
            fix(&mut a.client_key);
            fix(&mut a.token_file);
        }
    }
    kubeconfig
}

fn parse_server(server: &str) -> Result<http::Uri> {
    let uri: http::Uri = server
        .parse()
        .map_err(|err| Error::Config(format!("server address {server:?} is not a URL: {err}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => Ok(uri),
        _ => Err(Error::Config(format!(
            "server address {server:?} must be an http:// or https:// URL with a host"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Err(err) = std::fs::write(&path, text) {
            panic!("writing {}: {err}", path.display());
        }
        path
    }

    async fn config_error(kubeconfig: Option<&Path>, master: Option<&str>) -> String {
        match load_config(kubeconfig, master, None).await {
            Ok(config) => panic!("expected an error, got a config for {}", config.cluster_url),
            Err(err) => err.to_string(),
        }
    }

    #[tokio::test]
    async fn a_missing_file_is_named() {
        let err = config_error(Some(Path::new("/nonexistent/kubeconfig")), None).await;
        assert!(
            err.contains("reading kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
        assert!(err.contains("No such file"), "{err}");
    }

    #[tokio::test]
    async fn bad_base64_and_bad_yaml_are_named() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir");
        };
        let bad64 = write(
            dir.path(),
            "bad64",
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: '!!!not base64!!!'\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: abc}\n",
        );
        let err = config_error(Some(&bad64), None).await;
        assert!(err.contains("bad64"), "{err}");
        assert!(err.to_lowercase().contains("base64"), "{err}");

        let garbage = write(dir.path(), "garbage", "{{{ not yaml");
        let err = config_error(Some(&garbage), None).await;
        assert!(err.contains("parsing kubeconfig"), "{err}");

        let empty = write(dir.path(), "empty", "apiVersion: v1\nkind: Config\n");
        let err = config_error(Some(&empty), None).await;
        assert!(err.contains("defines no clusters"), "{err}");
    }

    #[tokio::test]
    async fn master_overrides_and_is_checked() {
        let config = match load_config(None, Some("http://127.0.0.1:8080"), None).await {
            Ok(config) => config,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(config.cluster_url.to_string(), "http://127.0.0.1:8080/");
        let err = config_error(None, Some("127.0.0.1:8080")).await;
        assert!(err.contains("must be an http:// or https:// URL"), "{err}");
    }
}
