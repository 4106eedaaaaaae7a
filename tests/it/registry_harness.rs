//! The test registry itself works: plain, basic auth and TLS answer the
//! distribution API's version check as the spec says.

use crate::common;

use crate::common::registry::{PASSWORD, RegistryOptions, TestRegistry, USER};

fn get_v2(url: &str, ca: Option<&std::path::Path>, auth: bool) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut builder = common::http_client();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let client = builder.build().unwrap();
        let mut request = client.get(url);
        if auth {
            request = request.basic_auth(USER, Some(PASSWORD));
        }
        request.send().await.unwrap().status().as_u16()
    })
}

#[test]
fn plain_registry_answers_on_loopback() {
    let registry = TestRegistry::start(RegistryOptions::default());
    assert_eq!(
        get_v2(&format!("http://{}/v2/", registry.host()), None, false),
        200
    );
}

#[test]
fn htpasswd_registry_wants_credentials() {
    let registry = TestRegistry::start(RegistryOptions {
        htpasswd: true,
        ..Default::default()
    });
    let url = format!("http://{}/v2/", registry.host());
    assert_eq!(get_v2(&url, None, false), 401);
    assert_eq!(get_v2(&url, None, true), 200);
}

#[test]
fn tls_registry_is_trusted_through_its_ca() {
    let registry = TestRegistry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let url = format!("https://{}/v2/", registry.tls_host());
    assert_eq!(get_v2(&url, registry.ca_file.as_deref(), false), 200);
}
