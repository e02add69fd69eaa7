// One schema for both backends (migrations/sqlite and migrations/postgres create the same tables).

diesel::table! {
    organizations (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
        display_name -> Nullable<Text>,
        status -> Text,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        organization_id -> BigInt,
        email -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        permissions -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        public_id -> Nullable<Text>,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures (user_id, source) {
        user_id -> BigInt,
        source -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    one_time_reveals (handle_hash) {
        handle_hash -> Text,
        session_id -> BigInt,
        sealed -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        token_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        organization_id -> BigInt,
        client_id -> Text,
        name -> Text,
        environment -> Text,
        scopes -> Text,
        status -> Text,
        expires_at -> Nullable<Timestamp>,
        metadata -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        key_prefix -> Text,
        token_only -> Bool,
        refresh_tokens -> Bool,
        expiring_notified_for -> Nullable<Timestamp>,
        expired_notified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_key_secrets (id) {
        id -> BigInt,
        api_key_id -> BigInt,
        prefix -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        expiry_notified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> BigInt,
        kid -> Text,
        algorithm -> Text,
        status -> Text,
        public_jwk -> Text,
        private_key -> Text,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
        verify_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        organization_id -> Nullable<BigInt>,
        occurred_at -> Timestamp,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    state_changes (id) {
        id -> BigInt,
        kind -> Text,
        subject -> Text,
        not_before -> BigInt,
        expires_at -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(api_keys -> organizations (organization_id));
diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(api_key_secrets -> api_keys (api_key_id));
diesel::joinable!(audit_events -> organizations (organization_id));
diesel::table! {
    invitations (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        api_key_id -> BigInt,
        family -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        access_jti -> Text,
        access_expires_at -> Timestamp,
    }
}

diesel::table! {
    key_usage (client_id, hour, metric) {
        client_id -> Text,
        hour -> Timestamp,
        metric -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        public_id -> Text,
        organization_id -> BigInt,
        url -> Text,
        description -> Text,
        events -> Text,
        status -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        consecutive_failures -> Integer,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> BigInt,
        public_id -> Text,
        organization_id -> BigInt,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        public_id -> Text,
        event_id -> BigInt,
        endpoint_id -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        give_up_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> Timestamp,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        response_body -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_events (event_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(refresh_tokens -> api_keys (api_key_id));
diesel::joinable!(invitations -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(login_failures -> users (user_id));
diesel::joinable!(one_time_reveals -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    users,
    invitations,
    login_failures,
    one_time_reveals,
    sessions,
    api_keys,
    api_key_secrets,
    refresh_tokens,
    key_usage,
    webhook_endpoints,
    webhook_events,
    webhook_deliveries,
    webhook_attempts,
    signing_keys,
    audit_events,
    state_changes,
);
