//! Which product a kube context's cluster is, and so whether it is a local development cluster
//! the pipeline may deploy to without being told twice.
//!
//! The rule is Tilt's (`tilt-dev/clusterid` `ProductFromContext` and `IsDevCluster`, used by
//! Tilt's `allow_k8s_contexts` guard): the decision rests on the name of the kubeconfig
//! *cluster* entry the context points at, not on the context's own name, so a context renamed
//! to `kind-dev` that still points at a production cluster is not mistaken for a local one. A
//! cluster whose CA file lies under `~/.minikube/` is Minikube whatever its name. Tilt's two
//! other clues need the file a context was loaded from (`~/.config/k3d/...`, `kind-config-*`),
//! which `kubectl config view` does not show; kind since v0.6 and k3d since v3 name their
//! clusters `kind-*` and `k3d-*`, which the name rule covers.

use std::path::Path;

/// The products Tilt tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Minikube.
    Minikube,
    /// Docker Desktop's Kubernetes.
    DockerDesktop,
    /// Google Kubernetes Engine.
    Gke,
    /// Amazon EKS.
    Eks,
    /// kind.
    Kind,
    /// MicroK8s.
    MicroK8s,
    /// Red Hat CodeReady Containers.
    Crc,
    /// Krucible.
    Krucible,
    /// k3d.
    K3d,
    /// Rancher Desktop.
    RancherDesktop,
    /// Colima.
    Colima,
    /// OrbStack.
    OrbStack,
    /// None of the above.
    Unknown,
}

impl Product {
    /// Tilt's `IsDevCluster`: a cluster on this machine, made for development.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Product::Minikube
                | Product::DockerDesktop
                | Product::MicroK8s
                | Product::Crc
                | Product::Kind
                | Product::K3d
                | Product::Krucible
                | Product::RancherDesktop
                | Product::Colima
                | Product::OrbStack
        )
    }

    /// The product's name as Tilt spells it.
    pub fn name(self) -> &'static str {
        match self {
            Product::Minikube => "minikube",
            Product::DockerDesktop => "docker-desktop",
            Product::Gke => "gke",
            Product::Eks => "eks",
            Product::Kind => "kind",
            Product::MicroK8s => "microk8s",
            Product::Crc => "crc",
            Product::Krucible => "krucible",
            Product::K3d => "k3d",
            Product::RancherDesktop => "rancher-desktop",
            Product::Colima => "colima",
            Product::OrbStack => "orbstack",
            Product::Unknown => "unknown",
        }
    }
}

/// The product of the kubeconfig cluster entry `cluster`, whose CA file is `ca` (if any);
/// `home` is the user's home directory (for Minikube's CA path). Tilt's order of checks.
pub fn product(cluster: &str, ca: Option<&str>, home: Option<&Path>) -> Product {
    let cn = cluster;
    if cn.starts_with("minikube") {
        Product::Minikube
    } else if cn.starts_with("docker-for-desktop-cluster") || cn.starts_with("docker-desktop") {
        Product::DockerDesktop
    } else if cn.starts_with("gke") {
        Product::Gke
    } else if cn.starts_with("arn:aws:eks:") || cn.ends_with(".eksctl.io") {
        Product::Eks
    } else if cn == "kind" || cn.starts_with("kind-") {
        Product::Kind
    } else if cn.starts_with("microk8s") {
        Product::MicroK8s
    } else if cn.starts_with("api-crc-testing") {
        Product::Crc
    } else if cn.starts_with("krucible-") {
        Product::Krucible
    } else if cn.starts_with("k3d-") {
        Product::K3d
    } else if cn.starts_with("rancher-desktop") {
        Product::RancherDesktop
    } else if cn.starts_with("colima") {
        Product::Colima
    } else if cn == "orbstack" {
        Product::OrbStack
    } else if let (Some(ca), Some(home)) = (ca, home)
        && Path::new(ca).starts_with(home.join(".minikube"))
    {
        Product::Minikube
    } else {
        Product::Unknown
    }
}

/// The kind cluster's name (`kind load docker-image --name`): the cluster entry without its
/// `kind-` prefix (kind v0.6+ names both `kind-<name>`); kind before v0.6 used `kind` itself.
pub fn kind_cluster_name(cluster: &str) -> &str {
    cluster.strip_prefix("kind-").unwrap_or(cluster)
}

/// The k3d cluster's name (`k3d image import --cluster`): the entry without its `k3d-` prefix.
pub fn k3d_cluster_name(cluster: &str) -> &str {
    cluster.strip_prefix("k3d-").unwrap_or(cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tilt's own table (`clusterid/product_test.go`), minus the two cases that need the file
    /// a context came from.
    #[test]
    fn tilt_s_cases() {
        let home = Path::new("/home/u");
        for (cluster, ca, want) in [
            ("minikube", None, Product::Minikube),
            ("minikube-dev-cluster-1", None, Product::Minikube),
            ("docker-for-desktop-cluster", None, Product::DockerDesktop),
            (
                "docker-for-desktop-cluster-dev-cluster-1",
                None,
                Product::DockerDesktop,
            ),
            ("docker-desktop", None, Product::DockerDesktop),
            ("docker-desktop-dev-cluster-1", None, Product::DockerDesktop),
            ("gke_blorg-dev_us-central1-b_blorg", None, Product::Gke),
            (
                "arn:aws:eks:us-east-1:81111:cluster/blorg",
                None,
                Product::Eks,
            ),
            ("blorg.us-east-1.eksctl.io", None, Product::Eks),
            ("kind", None, Product::Kind),
            ("microk8s-cluster", None, Product::MicroK8s),
            ("microk8s", None, Product::MicroK8s),
            ("krucible-c-74701fe1a05596b3", None, Product::Krucible),
            ("api-crc-testing", None, Product::Crc),
            ("api-crc-testing:6443", None, Product::Crc),
            ("kind-custom-name", None, Product::Kind),
            ("custom-name", None, Product::Unknown),
            (
                "custom-name",
                Some("/home/u/.minikube/ca.crt"),
                Product::Minikube,
            ),
            (
                "custom-name",
                Some("/home/u/other/ca.crt"),
                Product::Unknown,
            ),
            ("k3d-k3s-default", None, Product::K3d),
            ("rancher-desktop", None, Product::RancherDesktop),
            ("colima", None, Product::Colima),
            ("colima-custom", None, Product::Colima),
            ("orbstack", None, Product::OrbStack),
        ] {
            assert_eq!(product(cluster, ca, Some(home)), want, "{cluster} {ca:?}");
        }
    }

    #[test]
    fn only_dev_products_are_local() {
        for p in [Product::Gke, Product::Eks, Product::Unknown] {
            assert!(!p.is_local(), "{p:?}");
        }
        for p in [
            Product::Kind,
            Product::K3d,
            Product::Minikube,
            Product::DockerDesktop,
            Product::RancherDesktop,
        ] {
            assert!(p.is_local(), "{p:?}");
        }
    }

    #[test]
    fn loader_cluster_names() {
        assert_eq!(kind_cluster_name("kind-dev"), "dev");
        assert_eq!(kind_cluster_name("kind"), "kind");
        assert_eq!(k3d_cluster_name("k3d-k3s-default"), "k3s-default");
    }
}
