package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/cenkalti/backoff/v5"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValue creates or updates the JetStream key-value bucket of cfg and
// returns it: shared state every instance watches (the live settings).
// Retried as the streams are (see ensureStreams); a tool opens the bucket
// as it is and never changes its configuration.
func (b *Bus) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := startRetry(ctx, b.cfg.StartTimeout, func(ctx context.Context) (jetstream.KeyValue, error) {
		if b.cfg.Tool {
			kv, err := b.js.KeyValue(ctx, cfg.Bucket)
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return nil, backoff.Permanent(err)
			}
			return kv, err
		}
		return b.js.CreateOrUpdateKeyValue(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
