//! The Secret a cluster pulls a private registry's images with (`imagePullSecrets`): type
//! `kubernetes.io/dockerconfigjson`, made from the run's registry credentials and handed to
//! `kubectl apply -f -` on stdin only.

use base64::Engine as _;

use super::{Address, Credentials};
use crate::secrets::{Manifest, SecretValue};

/// The pull Secret's name for `release`.
pub fn name(release: &str) -> String {
    format!("{release}-registry")
}

/// The `.dockerconfigjson` document: `{"auths": {HOST: {username, password, auth}}}`, the form
/// `kubectl create secret docker-registry` writes.
fn docker_config_json(address: &Address, credentials: &Credentials) -> SecretValue {
    let user = &credentials.username;
    let password = credentials.password.expose();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let doc = serde_json::json!({
        "auths": { address.credentials_key(): {
            "username": user, "password": password, "auth": auth,
        }}
    });
    SecretValue::new(doc.to_string())
}

/// The Secret manifest (JSON) named `name` in `namespace`, annotated with `digest` (a keyed
/// digest of the credentials, so a rotated password is applied again).
pub fn manifest(
    name: &str,
    namespace: &str,
    address: &Address,
    credentials: &Credentials,
    digest: &str,
) -> Manifest {
    let config = docker_config_json(address, credentials);
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                crate::tools::kubectl::MANAGED_BY_LABEL: crate::tools::kubectl::MANAGED_BY_VALUE,
                "app.kubernetes.io/part-of": "todo-app",
            },
            "annotations": { crate::secrets::DIGEST_ANNOTATION: digest },
        },
        "data": {
            ".dockerconfigjson":
                base64::engine::general_purpose::STANDARD.encode(config.expose()),
        },
    });
    Manifest::new(doc.to_string().into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::image_registry::Source;

    #[test]
    fn the_manifest_is_a_dockerconfigjson_secret_for_the_host() {
        let address = Address::parse("ghcr.io/acme").unwrap();
        let c = Credentials {
            username: "bot".into(),
            password: SecretValue::new("pw"),
            source: Source::Environment,
        };
        let m = manifest("todo-app-registry", "ns", &address, &c, "d1");
        let doc: serde_json::Value = serde_json::from_slice(m.bytes()).unwrap();
        assert_eq!(doc["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(doc["metadata"]["namespace"], "ns");
        let data = base64::engine::general_purpose::STANDARD
            .decode(doc["data"][".dockerconfigjson"].as_str().unwrap())
            .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(config["auths"]["ghcr.io"]["auth"], "Ym90OnB3");
        assert!(!format!("{m:?}").contains("pw"));
    }
}
