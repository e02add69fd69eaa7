//! The audit trail's vocabulary: what happened (`AuditAction`) and how it ended (`Outcome`).

use super::status::closed_set;

closed_set! {
    /// Everything the audit trail records.
    AuditAction, field "action" {
        ApiKeyCreated => "api_key.created",
        ApiKeyUpdated => "api_key.updated",
        ApiKeyDisabled => "api_key.disabled",
        ApiKeyEnabled => "api_key.enabled",
        ApiKeyRotated => "api_key.rotated",
        ApiKeyRevoked => "api_key.revoked",
        ApiKeyDeleted => "api_key.deleted",
        TokenDenied => "token.denied",
        TokenRevoked => "token.revoked",
        UserCreated => "user.created",
        UserUpdated => "user.updated",
        UserDisabled => "user.disabled",
        UserInvited => "user.invited",
        InvitationAccepted => "user.invitation_accepted",
        InvitationRevoked => "user.invitation_revoked",
        SessionLogin => "session.login",
        SessionLogout => "session.logout",
        OrganizationCreated => "organization.created",
        OrganizationUpdated => "organization.updated",
        OrganizationDeleted => "organization.deleted",
        SigningKeysRotated => "signing_keys.rotated",
        MasterKeyRewrapped => "master_key.rewrapped",
        WebhookEndpointCreated => "webhook_endpoint.created",
        WebhookEndpointUpdated => "webhook_endpoint.updated",
        WebhookEndpointDeleted => "webhook_endpoint.deleted",
        WebhookEndpointSecretRolled => "webhook_endpoint.secret_rolled",
        /// Disabled by keygate after a run of failed deliveries.
        WebhookEndpointDisabled => "webhook_endpoint.disabled",
    }
}

closed_set! {
    /// How an action ended. A refusal names its reason, for the trail only: the caller of a
    /// refused token or log-in request is never told which it was.
    Outcome, field "outcome" {
        Success => "success",
        AlreadyRevoked => "already_revoked",
        Deleted => "deleted",
        Revoked => "revoked",
        Disabled => "disabled",
        WrongEnvironment => "wrong_environment",
        Expired => "expired",
        WrongSecret => "wrong_secret",
        ExpiredSecret => "expired_secret",
        MalformedSecret => "malformed_secret",
        OwnerDisabled => "owner_disabled",
        OrganizationDisabled => "organization_disabled",
        WrongPassword => "wrong_password",
        UnknownEmail => "unknown_email",
        Locked => "locked",
        RefreshTokenReused => "refresh_token_reused",
    }
}
