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
    signing_keys,
    audit_events,
    state_changes,
);
