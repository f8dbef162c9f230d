//! A real HTTPS webhook server, started per test with an rcgen CA, that allows, denies,
//! patches, fails or never answers depending on the path it is called on.

use super::*;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use std::convert::Infallible;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Result<Pki, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    let cert = params.signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))?;
    Ok(Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: key.serialize_der(),
    })
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uid = review["request"]["uid"].clone();
    let response = match path.as_str() {
        "/allow" => json!({"uid": uid, "allowed": true, "warnings": [format!("query {query}")]}),
        "/deny" => {
            json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": format!("no {}", review["request"]["name"].as_str().unwrap_or(""))}})
        }
        "/patch" => json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": STANDARD.encode(r#"[{"op":"add","path":"/metadata/labels","value":{"patched":"yes"}}]"#)}),
        "/wrong-uid" => json!({"uid": "nope", "allowed": true}),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Value::Null
        }
        _ => {
            return Ok(hyper::Response::builder()
                .status(500)
                .body(Full::new(Bytes::from_static(b"boom")))
                .unwrap_or_default())
        }
    };
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(hyper::Response::new(Full::new(Bytes::from(
        review.to_string(),
    ))))
}

/// Starts the server on an ephemeral port; returns its base URL and the CA bundle (base64).
async fn server() -> Result<(String, String), Box<dyn std::error::Error>> {
    let pki = pki()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key)),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service_fn(answer))
                        .await;
                }
            });
        }
    });
    Ok((format!("https://{addr}"), STANDARD.encode(pki.ca_pem)))
}

fn hook(url: &str, ca: &str) -> Value {
    json!({"name": "test.example.com", "clientConfig": {"url": url, "caBundle": ca}, "timeoutSeconds": 1})
}

fn request(object: &Value) -> Request<'_> {
    Request {
        operation: "CREATE",
        group: "",
        version: "v1",
        resource: "pods",
        subresource: "",
        kind: "Pod",
        namespace: "default",
        name: "web",
        object: Some(object),
        old_object: None,
        user: "alice",
        groups: &[],
        dry_run: false,
        namespace_labels: None,
        cluster_scoped: false,
    }
}

#[tokio::test]
async fn allows_denies_and_patches_over_https() -> TestResult {
    let (base, ca) = server().await?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}});
    let req = request(&pod);

    let allowed = call(&hook(&format!("{base}/allow"), &ca), &req).await?;
    assert!(allowed.allowed);
    assert_eq!(allowed.warnings, ["query timeout=1s"]);

    let denied = call(&hook(&format!("{base}/deny"), &ca), &req).await?;
    assert!(!denied.allowed);
    let status = crate::denial_status("test.example.com", &denied);
    assert_eq!(
        status["message"],
        "admission webhook \"test.example.com\" denied the request: no web"
    );
    assert_eq!(status["code"], 403);

    let patched = call(&hook(&format!("{base}/patch"), &ca), &req).await?;
    assert_eq!(
        patched.patch,
        Some(json!([{"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}}]))
    );

    let wrong = call(&hook(&format!("{base}/wrong-uid"), &ca), &req).await;
    assert!(
        matches!(wrong, Err(Error::InvalidResponse(m)) if m.starts_with("expected response.uid="))
    );

    let failed = call(&hook(&format!("{base}/fail"), &ca), &req).await;
    assert!(
        matches!(failed, Err(Error::HttpStatus { code: 500, ref body }) if body == "boom"),
        "{failed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn times_out_on_a_silent_webhook() -> TestResult {
    let (base, ca) = server().await?;
    let pod = json!({});
    let started = std::time::Instant::now();
    let result = call(&hook(&format!("{base}/hang"), &ca), &request(&pod)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = result.err().ok_or("a silent webhook must time out")?;
    assert_eq!(
        err.to_string(),
        format!(
            "failed to call webhook: Post \"{base}/hang?timeout=1s\": context deadline exceeded"
        )
    );
    let status = crate::call_error_status("test.example.com", &err);
    assert_eq!(status["code"], 500);
    assert!(crate::fails_closed(&hook("", "")));
    Ok(())
}

#[tokio::test]
async fn trusts_only_the_ca_bundle() -> TestResult {
    let (base, _) = server().await?;
    let other_ca = STANDARD.encode(pki()?.ca_pem);
    let pod = json!({});
    let result = call(&hook(&format!("{base}/allow"), &other_ca), &request(&pod)).await;
    assert!(matches!(result, Err(Error::Transport { .. })), "{result:?}");
    let result = call(&hook(&format!("{base}/allow"), ""), &request(&pod)).await;
    assert!(
        matches!(result, Err(Error::InvalidCaBundle(_))),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn rejects_unusable_client_configs() {
    let pod = json!({});
    let service =
        json!({"name": "s", "clientConfig": {"service": {"namespace": "default", "name": "svc"}}});
    let result = call(&service, &request(&pod)).await;
    assert!(matches!(result, Err(Error::ServiceNotSupported)));
    assert_eq!(
        Error::ServiceNotSupported.to_string(),
        "services are not supported yet"
    );
    let plain = hook("http://127.0.0.1:1/x", "Zm9v");
    assert!(matches!(
        call(&plain, &request(&pod)).await,
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        call(&json!({}), &request(&pod)).await,
        Err(Error::NoClientConfig)
    ));
}
