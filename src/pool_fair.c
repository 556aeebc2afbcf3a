/* pool_fair.c — the pool's fairness keys: who waits, who holds, who has
 * been served, and the statistics per key (pool_fair.h). Runs under the
 * pool's mutex; no I/O, no clock reads of its own. */
#include <stdlib.h>
#include <string.h>

#include "pool_fair.h"

#define HALF_LIFE_NS (1000LL * 1000000) /* recent service halves every second */
#define MINUTE_NS (60LL * 1000000000)

void gp__fair_init(gp__fair_t *f)
{
    memset(f, 0, sizeof *f);
    f->other.in_table = false;
}

void gp__fair_free(gp__fair_t *f)
{
    for (int b = 0; b < GP__FAIR_BUCKETS; b++) {
        gp__fair_key_t *k = f->buckets[b];
        while (k) {
            gp__fair_key_t *next = k->hnext;
            free(k);
            k = next;
        }
        f->buckets[b] = NULL;
    }
}

/* Eight bytes at a time (a tenant id is 36; the last word may overlap the
 * one before), a multiply-xorshift mix per word, the length folded in. Not
 * for adversaries: a collision only makes two keys share a hash chain. */
static inline uint64_t word_at(const char *s, size_t i)
{
    uint64_t w;
    memcpy(&w, s + i, 8);
    return w;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

size_t gp__fair_len(const char *label) { return label ? strnlen(label, GP__FAIR_NAME_MAX - 1) : 0; }

uint64_t gp__fair_hash(const char *label, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    if (n < 8) {
        uint64_t w = 0;
        for (size_t j = 0; j < n; j++)
            w |= (uint64_t)(unsigned char)label[j] << (8 * j);
        return mix(h, w);
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = mix(h, word_at(label, i));
    return i < n ? mix(h, word_at(label, n - 8)) : h;
}

/* Word by word, inline (a libc call costs more than a tenant id's five words). */
static inline bool same_name(const gp__fair_key_t *k, const char *label, size_t n)
{
    if (k->name[n] != 0)
        return false;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            if (k->name[i] != label[i])
                return false;
        return true;
    }
    for (size_t i = 0; i + 8 <= n; i += 8)
        if (word_at(k->name, i) != word_at(label, i))
            return false;
    return word_at(k->name, n - 8) == word_at(label, n - 8);
}

bool gp__fair_same(const gp__fair_key_t *k, const char *label, size_t len) { return same_name(k, label, len); }

static bool active(const gp__fair_key_t *k) { return k->held > 0 || k->waiting > 0; }

static void fold(gp__fair_stats_t *into, const gp__fair_stats_t *s)
{
    into->acquires += s->acquires;
    into->timeouts += s->timeouts;
    into->throttled += s->throttled;
    for (int i = 0; i <= GP_LATENCY_BUCKETS; i++) {
        into->wait_n[i] += s->wait_n[i];
        into->hold_n[i] += s->hold_n[i];
    }
    into->wait_sum_ns += s->wait_sum_ns;
    into->hold_sum_ns += s->hold_sum_ns;
    if (s->wait_max_ns > into->wait_max_ns) into->wait_max_ns = s->wait_max_ns;
    if (s->hold_max_ns > into->hold_max_ns) into->hold_max_ns = s->hold_max_ns;
    into->recent_hold_ns[0] += s->recent_hold_ns[0];
    into->recent_hold_ns[1] += s->recent_hold_ns[1];
}

static uint64_t recent_hold(const gp__fair_key_t *k) { return k->st.recent_hold_ns[0] + k->st.recent_hold_ns[1]; }

/* Make room for a new key when the table is full: of the next
 * GP__FAIR_EVICT_SCAN idle keys from the clock hand (looking at no more
 * than a few buckets' worth of busy ones), drop the one with the least
 * recent hold time into "other". Nothing to drop (all busy): the table
 * grows, and shrinks again as keys go idle and new ones arrive. */
static void make_room(gp__fair_t *f)
{
    gp__fair_key_t *victim = NULL, **victim_at = NULL;
    int idle_seen = 0;
    for (int b = 0; b < GP__FAIR_BUCKETS && idle_seen < GP__FAIR_EVICT_SCAN; b++) {
        int at = (f->hand + b) % GP__FAIR_BUCKETS;
        for (gp__fair_key_t **pp = &f->buckets[at]; *pp; pp = &(*pp)->hnext) {
            gp__fair_key_t *k = *pp;
            if (active(k))
                continue;
            idle_seen++;
            if (!victim || recent_hold(k) < recent_hold(victim)) {
                victim = k;
                victim_at = pp;
            }
        }
        if (idle_seen >= GP__FAIR_EVICT_SCAN)
            f->hand = (at + 1) % GP__FAIR_BUCKETS;
    }
    if (!victim)
        return;
    *victim_at = victim->hnext;
    fold(&f->other.st, &victim->st);
    f->n_keys--;
    f->gen++;
    free(victim);
}

/* ---- recent service ---------------------------------------------------------------- */

static void decay(gp__fair_key_t *k, int64_t now)
{
    if (now - k->service_at < HALF_LIFE_NS) /* the common case: no division */
        return;
    int64_t halves = (now - k->service_at) / HALF_LIFE_NS;
    if (halves > 0) {
        k->service_ns = halves >= 64 ? 0 : k->service_ns >> halves;
        k->service_at += halves * HALF_LIFE_NS;
    }
}

/* Finished leases (decayed) plus the connections it holds now, counted up
 * to now: a key holding long leases is well served already. */
static uint64_t service(gp__fair_key_t *k, int64_t now)
{
    decay(k, now);
    int64_t inflight = (int64_t)k->held * now - k->held_since_sum;
    return k->service_ns + (uint64_t)(inflight > 0 ? inflight : 0);
}

static void set_minute(gp__fair_key_t *k, int64_t m)
{
    k->minute = m;
    k->minute_start = m * MINUTE_NS;
    k->minute_end = k->minute_start + MINUTE_NS;
}

static inline void roll_minute(gp__fair_key_t *k, int64_t now)
{
    if (now >= k->minute_start && now < k->minute_end)
        return; /* still this minute */
    int64_t m = now / MINUTE_NS;
    k->st.recent_hold_ns[1] = m == k->minute + 1 ? k->st.recent_hold_ns[0] : 0;
    k->st.recent_hold_ns[0] = 0;
    set_minute(k, m);
}

/* ---- the table ------------------------------------------------------------------------ */

gp__fair_key_t *gp__fair_key(gp__fair_t *f, const char *label, size_t n, uint64_t hash, int64_t now)
{
    gp__fair_key_t **head = &f->buckets[hash % GP__FAIR_BUCKETS];
    for (gp__fair_key_t *k = *head; k; k = k->hnext)
        if (k->hash == hash && same_name(k, label, n))
            return k;
    gp__fair_key_t *k = calloc(1, sizeof *k);
    if (!k)
        return &f->other; /* counted with the others, scheduled as one key */
    if (n)
        memcpy(k->name, label, n);
    k->hash = hash;
    k->in_table = true;
    k->service_at = now;
    set_minute(k, now / MINUTE_NS);
    if (f->n_keys >= GP__FAIR_KEEP)
        make_room(f); /* before linking: never the new key itself */
    k->hnext = *head;
    *head = k;
    f->n_keys++;
    return k;
}

/* Power-of-two bucket of a duration: the first i with ns < 2^(10+i), or
 * GP_LATENCY_BUCKETS when above every bound. */
static int bucket(int64_t ns)
{
    if (ns < 1024)
        return 0;
    int i = (64 - __builtin_clzll((uint64_t)ns)) - 10; /* ns < 2^(10+i) exactly when its bit length <= 10+i */
    return i < GP_LATENCY_BUCKETS ? i : GP_LATENCY_BUCKETS;
}

void gp__fair_handout(gp__fair_t *f, gp__fair_key_t *k, int64_t leased_ns, int64_t wait_ns)
{
    k->held++;
    k->held_since_sum += leased_ns;
    k->st.acquires++;
    if (wait_ns < 0)
        wait_ns = 0;
    k->st.wait_n[bucket(wait_ns)]++;
    k->st.wait_sum_ns += (uint64_t)wait_ns;
    if (wait_ns > k->st.wait_max_ns)
        k->st.wait_max_ns = wait_ns;
}

void gp__fair_release(gp__fair_t *f, gp__fair_key_t *k, int64_t leased_ns, int64_t now)
{
    int64_t hold = now - leased_ns;
    if (hold < 0)
        hold = 0;
    k->held--;
    k->held_since_sum -= leased_ns;
    decay(k, now);
    k->service_ns += (uint64_t)hold;
    roll_minute(k, now);
    k->st.recent_hold_ns[0] += (uint64_t)hold;
    k->st.hold_n[bucket(hold)]++;
    k->st.hold_sum_ns += (uint64_t)hold;
    if (hold > k->st.hold_max_ns)
        k->st.hold_max_ns = hold;
}

void gp__fair_enqueue(gp__fair_t *f, gp__fair_key_t *k, gp__fair_node_t *n)
{
    n->seq = ++f->seq;
    n->next = NULL;
    n->prev = k->wtail;
    if (k->wtail) k->wtail->next = n; else k->whead = n;
    k->wtail = n;
    if (k->waiting++ == 0) { /* joins the keys with waiters */
        k->wnext = NULL;
        k->wprev = f->wtail;
        if (f->wtail) f->wtail->wnext = k; else f->whead = k;
        f->wtail = k;
    }
}

void gp__fair_dequeue(gp__fair_t *f, gp__fair_key_t *k, gp__fair_node_t *n)
{
    if (n->prev) n->prev->next = n->next; else k->whead = n->next;
    if (n->next) n->next->prev = n->prev; else k->wtail = n->prev;
    n->prev = n->next = NULL;
    if (--k->waiting == 0) {
        if (k->wprev) k->wprev->wnext = k->wnext; else f->whead = k->wnext;
        if (k->wnext) k->wnext->wprev = k->wprev; else f->wtail = k->wprev;
        k->wprev = k->wnext = NULL;
    }
}

void gp__fair_timed_out(gp__fair_key_t *k) { k->st.timeouts++; }

void gp__fair_throttled(gp__fair_t *f, gp__fair_key_t *k)
{
    k->st.throttled++;
    f->throttled++;
}

gp__fair_node_t *gp__fair_next(gp__fair_t *f, int share_cap, int64_t now)
{
    gp__fair_key_t *best = NULL;
    bool best_over = true;
    uint64_t best_service = 0;
    for (gp__fair_key_t *k = f->whead; k; k = k->wnext) {
        bool over = k->held >= share_cap;
        uint64_t s = service(k, now);
        if (!best || (!over && best_over) ||
            (over == best_over && (s < best_service || (s == best_service && k->whead->seq < best->whead->seq)))) {
            best = k;
            best_over = over;
            best_service = s;
        }
    }
    return best ? best->whead : NULL;
}

/* ---- metrics -------------------------------------------------------------------------- */

/* A gp_latency_t from power-of-two counts: percentiles interpolated within
 * their bucket (so within a factor of two), capped by the maximum. */
static void latency_of(const uint64_t *counts, uint64_t sum_ns, int64_t max_ns, gp_latency_t *out)
{
    memset(out, 0, sizeof *out);
    uint64_t total = 0;
    for (int i = 0; i < GP_LATENCY_BUCKETS; i++) {
        total += counts[i];
        out->le[i] = total;
    }
    total += counts[GP_LATENCY_BUCKETS];
    out->count = total;
    out->sum_us = (double)sum_ns / 1e3;
    out->max_us = (double)max_ns / 1e3;
    if (!total)
        return;
    const double qs[3] = {0.50, 0.90, 0.99};
    double *dst[3] = {&out->p50_us, &out->p90_us, &out->p99_us};
    for (int q = 0; q < 3; q++) {
        double rank = qs[q] * (double)total;
        uint64_t below = 0;
        int i = 0;
        while (i < GP_LATENCY_BUCKETS && (double)(below + counts[i]) < rank)
            below += counts[i++];
        double lo = i == 0 ? 0 : (double)gp_latency_bucket_ns(i - 1);
        double hi = i < GP_LATENCY_BUCKETS ? (double)gp_latency_bucket_ns(i) : (double)max_ns;
        double frac = counts[i] ? (rank - (double)below) / (double)counts[i] : 1.0;
        double v = lo + (hi - lo) * (frac > 1 ? 1 : frac);
        if (max_ns > 0 && v > (double)max_ns)
            v = (double)max_ns;
        *dst[q] = v / 1e3;
    }
}

static void key_row(const gp__fair_key_t *k, const gp__fair_stats_t *s, gp_pool_key_metrics_t *row)
{
    memset(row, 0, sizeof *row);
    if (k)
        memcpy(row->key, k->name, sizeof row->key);
    row->acquires = s->acquires;
    row->timeouts = s->timeouts;
    row->throttled = s->throttled;
    row->recent_hold_us = (s->recent_hold_ns[0] + s->recent_hold_ns[1]) / 1000;
    latency_of(s->wait_n, s->wait_sum_ns, s->wait_max_ns, &row->wait);
    latency_of(s->hold_n, s->hold_sum_ns, s->hold_max_ns, &row->hold);
}

void gp__fair_metrics(gp__fair_t *f, int64_t now, gp_pool_metrics_t *m)
{
    m->throttled = f->throttled;
    /* The top keys by recent hold time: a selection over the table (at
     * most GP__FAIR_KEEP idle keys plus the active ones). */
    gp__fair_key_t *top[GP_POOL_TOP_KEYS];
    int ntop = 0;
    gp__fair_stats_t rest = f->other.st;
    int rest_held = f->other.held, rest_waiting = f->other.waiting;
    for (int b = 0; b < GP__FAIR_BUCKETS; b++) {
        for (gp__fair_key_t *k = f->buckets[b]; k; k = k->hnext) {
            roll_minute(k, now);
            uint64_t w = k->st.recent_hold_ns[0] + k->st.recent_hold_ns[1];
            gp__fair_key_t *out = k;
            if (ntop < GP_POOL_TOP_KEYS) {
                top[ntop++] = k;
                out = NULL;
            } else {
                int least = 0; /* the lightest listed key gives way to a heavier one */
                for (int i = 1; i < ntop; i++)
                    if (top[i]->st.recent_hold_ns[0] + top[i]->st.recent_hold_ns[1] <
                        top[least]->st.recent_hold_ns[0] + top[least]->st.recent_hold_ns[1])
                        least = i;
                if (top[least]->st.recent_hold_ns[0] + top[least]->st.recent_hold_ns[1] < w) {
                    out = top[least];
                    top[least] = k;
                }
            }
            if (out) {
                fold(&rest, &out->st);
                rest_held += out->held;
                rest_waiting += out->waiting;
            }
        }
    }
    /* Heaviest first (insertion sort of at most GP_POOL_TOP_KEYS). */
    for (int i = 1; i < ntop; i++) {
        gp__fair_key_t *k = top[i];
        uint64_t w = k->st.recent_hold_ns[0] + k->st.recent_hold_ns[1];
        int j = i;
        while (j > 0 && top[j - 1]->st.recent_hold_ns[0] + top[j - 1]->st.recent_hold_ns[1] < w) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = k;
    }
    for (int i = 0; i < ntop; i++) {
        key_row(top[i], &top[i]->st, &m->keys[i]);
        m->keys[i].held = top[i]->held;
        m->keys[i].waiting = top[i]->waiting;
    }
    key_row(NULL, &rest, &m->keys[ntop]);
    m->keys[ntop].other = 1;
    m->keys[ntop].held = rest_held;
    m->keys[ntop].waiting = rest_waiting;
    m->n_keys = ntop + 1;
}
