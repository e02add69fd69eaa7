-- Usage history: per key, hour and metric (tokens_issued, refused.<reason>, direct_calls,
-- introspections), a count added to by the write-behind task. Kept for a configurable number
-- of days.
CREATE TABLE key_usage (
    client_id TEXT NOT NULL,
    hour TIMESTAMP NOT NULL,
    metric TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour, metric)
);

CREATE INDEX key_usage_hour ON key_usage (hour);
