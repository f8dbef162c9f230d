//! The list of every k8s-openapi 1.33 type that is a top-level Kubernetes kind: the roots from
//! which the definitions are generated and the source of their `x-kubernetes-group-version-kind`.

use k8s_openapi::{ListableResource, Resource};

use crate::definitions::{Registry, RootKind};

/// Registers one root kind; `list` says whether k8s-openapi knows its `<Kind>List`.
fn root<T: Resource + schemars::JsonSchema>(
    registry: &mut Registry,
    list_kind: Option<&'static str>,
) {
    let reference = registry.generator.subschema_for::<T>();
    let _ = reference;
    registry.roots.push(RootKind {
        definition: T::schema_name().into_owned(),
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        list_kind,
    });
}

fn listable<T: ListableResource + schemars::JsonSchema>(registry: &mut Registry) {
    root::<T>(registry, Some(T::LIST_KIND));
}

/// Adds every built-in kind of Kubernetes 1.33 to `registry`.
pub(crate) fn register_all(registry: &mut Registry) {
    listable::<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration>(registry);
    listable::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy>(registry);
    listable::<k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(
        registry,
    );
    listable::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>(
        registry,
    );
    listable::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicy>(
        registry,
    );
    listable::<k8s_openapi::api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding>(
        registry,
    );
    listable::<k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicy>(
        registry,
    );
    listable::<k8s_openapi::api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding>(
        registry,
    );
    listable::<k8s_openapi::api::apiserverinternal::v1alpha1::StorageVersion>(registry);
    listable::<k8s_openapi::api::apps::v1::ControllerRevision>(registry);
    listable::<k8s_openapi::api::apps::v1::DaemonSet>(registry);
    listable::<k8s_openapi::api::apps::v1::Deployment>(registry);
    listable::<k8s_openapi::api::apps::v1::ReplicaSet>(registry);
    listable::<k8s_openapi::api::apps::v1::StatefulSet>(registry);
    root::<k8s_openapi::api::authentication::v1::SelfSubjectReview>(registry, None);
    root::<k8s_openapi::api::authentication::v1::TokenRequest>(registry, None);
    root::<k8s_openapi::api::authentication::v1::TokenReview>(registry, None);
    root::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>(registry, None);
    root::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(registry, None);
    root::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>(registry, None);
    root::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(registry, None);
    listable::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(registry);
    root::<k8s_openapi::api::autoscaling::v1::Scale>(registry, None);
    listable::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>(registry);
    listable::<k8s_openapi::api::batch::v1::CronJob>(registry);
    listable::<k8s_openapi::api::batch::v1::Job>(registry);
    listable::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(registry);
    listable::<k8s_openapi::api::certificates::v1alpha1::ClusterTrustBundle>(registry);
    listable::<k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle>(registry);
    listable::<k8s_openapi::api::coordination::v1::Lease>(registry);
    listable::<k8s_openapi::api::coordination::v1alpha2::LeaseCandidate>(registry);
    listable::<k8s_openapi::api::coordination::v1beta1::LeaseCandidate>(registry);
    root::<k8s_openapi::api::core::v1::Binding>(registry, None);
    listable::<k8s_openapi::api::core::v1::ComponentStatus>(registry);
    listable::<k8s_openapi::api::core::v1::ConfigMap>(registry);
    listable::<k8s_openapi::api::core::v1::Endpoints>(registry);
    listable::<k8s_openapi::api::core::v1::Event>(registry);
    listable::<k8s_openapi::api::core::v1::LimitRange>(registry);
    listable::<k8s_openapi::api::core::v1::Namespace>(registry);
    listable::<k8s_openapi::api::core::v1::Node>(registry);
    listable::<k8s_openapi::api::core::v1::PersistentVolume>(registry);
    listable::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(registry);
    listable::<k8s_openapi::api::core::v1::Pod>(registry);
    listable::<k8s_openapi::api::core::v1::PodTemplate>(registry);
    listable::<k8s_openapi::api::core::v1::ReplicationController>(registry);
    listable::<k8s_openapi::api::core::v1::ResourceQuota>(registry);
    listable::<k8s_openapi::api::core::v1::Secret>(registry);
    listable::<k8s_openapi::api::core::v1::Service>(registry);
    listable::<k8s_openapi::api::core::v1::ServiceAccount>(registry);
    listable::<k8s_openapi::api::discovery::v1::EndpointSlice>(registry);
    listable::<k8s_openapi::api::events::v1::Event>(registry);
    listable::<k8s_openapi::api::flowcontrol::v1::FlowSchema>(registry);
    listable::<k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration>(registry);
    listable::<k8s_openapi::api::networking::v1::IPAddress>(registry);
    listable::<k8s_openapi::api::networking::v1::Ingress>(registry);
    listable::<k8s_openapi::api::networking::v1::IngressClass>(registry);
    listable::<k8s_openapi::api::networking::v1::NetworkPolicy>(registry);
    listable::<k8s_openapi::api::networking::v1::ServiceCIDR>(registry);
    listable::<k8s_openapi::api::networking::v1beta1::IPAddress>(registry);
    listable::<k8s_openapi::api::networking::v1beta1::ServiceCIDR>(registry);
    listable::<k8s_openapi::api::node::v1::RuntimeClass>(registry);
    root::<k8s_openapi::api::policy::v1::Eviction>(registry, None);
    listable::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(registry);
    listable::<k8s_openapi::api::rbac::v1::ClusterRole>(registry);
    listable::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(registry);
    listable::<k8s_openapi::api::rbac::v1::Role>(registry);
    listable::<k8s_openapi::api::rbac::v1::RoleBinding>(registry);
    listable::<k8s_openapi::api::resource::v1alpha3::DeviceClass>(registry);
    listable::<k8s_openapi::api::resource::v1alpha3::DeviceTaintRule>(registry);
    listable::<k8s_openapi::api::resource::v1alpha3::ResourceClaim>(registry);
    listable::<k8s_openapi::api::resource::v1alpha3::ResourceClaimTemplate>(registry);
    listable::<k8s_openapi::api::resource::v1alpha3::ResourceSlice>(registry);
    listable::<k8s_openapi::api::resource::v1beta1::DeviceClass>(registry);
    listable::<k8s_openapi::api::resource::v1beta1::ResourceClaim>(registry);
    listable::<k8s_openapi::api::resource::v1beta1::ResourceClaimTemplate>(registry);
    listable::<k8s_openapi::api::resource::v1beta1::ResourceSlice>(registry);
    listable::<k8s_openapi::api::resource::v1beta2::DeviceClass>(registry);
    listable::<k8s_openapi::api::resource::v1beta2::ResourceClaim>(registry);
    listable::<k8s_openapi::api::resource::v1beta2::ResourceClaimTemplate>(registry);
    listable::<k8s_openapi::api::resource::v1beta2::ResourceSlice>(registry);
    listable::<k8s_openapi::api::scheduling::v1::PriorityClass>(registry);
    listable::<k8s_openapi::api::storage::v1::CSIDriver>(registry);
    listable::<k8s_openapi::api::storage::v1::CSINode>(registry);
    listable::<k8s_openapi::api::storage::v1::CSIStorageCapacity>(registry);
    listable::<k8s_openapi::api::storage::v1::StorageClass>(registry);
    listable::<k8s_openapi::api::storage::v1::VolumeAttachment>(registry);
    listable::<k8s_openapi::api::storage::v1alpha1::VolumeAttributesClass>(registry);
    listable::<k8s_openapi::api::storage::v1beta1::VolumeAttributesClass>(registry);
    listable::<k8s_openapi::api::storagemigration::v1alpha1::StorageVersionMigration>(registry);
    listable::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(registry);
    root::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup>(registry, None);
    root::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList>(registry, None);
    root::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(registry, None);
    root::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIVersions>(registry, None);
    root::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>(registry, None);
    listable::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(registry);
}
