// The link state machine. Times are steady-clock points supplied by the caller; randomness (backoff
// jitter) comes from a seeded generator, so a test replays a run exactly.
#include "link_core.hpp"

#include <algorithm>

namespace tn::forward {

using std::chrono::milliseconds;

LinkCore::LinkCore(CoreSettings s, std::uint32_t seed)
    : s_(std::move(s)), rng_(seed), backoff_(milliseconds(500), std::chrono::duration_cast<milliseconds>(s_.backoff_max)) {
    for (const auto& r : s_.rules)
        if (r.kind == Kind::remote) remotes_.push_back(RemoteState{r});
}

Actions LinkCore::start(TimePoint now) {
    Actions a;
    begin_attempt(now, a);
    return a;
}

void LinkCore::begin_attempt(TimePoint now, Actions& a) {
    a.connect = true;
    state_ = State::connecting;
    probe_failed_ = false;
    next_probe_ = now + probe_every;
}

Actions LinkCore::on_connected(TimePoint now) {
    Actions a;
    if (state_ != State::connecting) return a;
    state_ = State::connected;
    ++connects_;
    last_rx_ = last_keepalive_ = now;
    unanswered_ = net_failures_ = 0;
    net_probe_in_flight_ = false;
    announced_up_ = false;
    long long down = lost_at_ ? std::chrono::duration_cast<milliseconds>(now - *lost_at_).count() : 0;
    a.notes.push_back({Note::Type::connected, "", down});
    for (const auto& r : s_.rules)
        if (r.kind != Kind::remote) a.notes.push_back({Note::Type::forward_up, r.str(), r.spec.port});
    for (auto& r : remotes_) {
        r.up = false;
        r.next_try = now;
    }
    due_binds(now, a);
    check_all_up(a);
    return a;
}

Actions LinkCore::on_connect_failed(TimePoint now) {
    Actions a;
    if (s_.once) {
        state_ = State::done;
        a.exit = 75;
        return a;
    }
    schedule_retry(now, true, a);
    // Whether anybody answered TCP decides how to wait: a server that is not there yet is probed until
    // it answers and then tried at once; one that answered and failed SSH keeps the backoff.
    a.probe_server = true;
    probe_in_flight_ = true;
    return a;
}

Actions LinkCore::on_server_probe(TimePoint now, bool answered) {
    Actions a;
    probe_in_flight_ = false;
    next_probe_ = now + probe_every;
    if (state_ != State::waiting && state_ != State::connecting) return a;
    if (!answered) {
        probe_failed_ = true;
    } else if (probe_failed_) {
        // Answers again after it did not: go now instead of sleeping out the backoff, or waiting for
        // a SYN sent into the outage to be retransmitted (an abandoned attempt ends unheard).
        begin_attempt(now, a);
    }
    return a;
}

Actions LinkCore::on_network_probe(TimePoint now, bool answered) {
    Actions a;
    net_probe_in_flight_ = false;
    if (state_ != State::connected) return a;
    if (answered) net_failures_ = 0;
    else if (++net_failures_ >= s_.keepalive_count) lose(now, "probe " + s_.probe.value_or("") + " failed", a);
    return a;
}

Actions LinkCore::on_heard(TimePoint now) {
    if (state_ == State::connected) {
        last_rx_ = now;
        unanswered_ = 0;
    }
    return {};
}

Actions LinkCore::on_closed(TimePoint now, const std::string& why) {
    Actions a;
    if (state_ == State::connected) lose(now, why, a);
    return a;
}

void LinkCore::lose(TimePoint now, const std::string& why, Actions& a) {
    lost_at_ = now;
    a.notes.push_back({Note::Type::lost, why});
    a.teardown = true;
    for (auto& r : remotes_) r.up = false;
    if (s_.once) {  // whoever runs us does the reconnecting
        state_ = State::done;
        a.exit = 75;
        return;
    }
    schedule_retry(now, false, a);
}

void LinkCore::schedule_retry(TimePoint now, bool after_failure, Actions& a) {
    state_ = State::waiting;
    if (!after_failure) backoff_.reset();
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto delay = backoff_.next(jitter(rng_));
    next_attempt_ = now + delay;
    next_probe_ = now + probe_every;
    probe_failed_ = false;
    a.notes.push_back({Note::Type::reconnecting, "", delay.count()});
}

Actions LinkCore::on_bind(TimePoint now, std::size_t index, BindOutcome outcome, int bound_port) {
    Actions a;
    if (state_ != State::connected || index >= remotes_.size()) return a;
    auto& r = remotes_[index];
    switch (outcome) {
    case BindOutcome::closed:
        lose(now, "connection closed while requesting " + r.rule.str(), a);
        return a;
    case BindOutcome::busy:
        r.next_try = now + busy_retry;
        return a;
    case BindOutcome::refused:
        // Usually the server still holds the port for our previous, dead session and frees it once it
        // notices. Say so on the first refusal, then every 40 (10 s).
        if (r.failures % 40 == 0) a.notes.push_back({Note::Type::bind_refused, r.rule.str(), r.failures});
        ++r.failures;
        r.next_try = now + bind_retry_every;
        return a;
    case BindOutcome::granted:
        r.up = true;
        r.bound_port = r.rule.spec.port != 0 ? r.rule.spec.port : bound_port;
        r.failures = 0;
        a.notes.push_back({Note::Type::forward_up, r.rule.str(), r.bound_port});
        check_all_up(a);
        return a;
    }
    return a;
}

void LinkCore::due_binds(TimePoint now, Actions& a) {
    for (std::size_t i = 0; i < remotes_.size(); ++i)
        if (!remotes_[i].up && now >= remotes_[i].next_try) {
            a.binds.push_back(i);
            remotes_[i].next_try = TimePoint::max();  // in flight until on_bind
        }
}

void LinkCore::check_all_up(Actions& a) {
    if (announced_up_ || state_ != State::connected) return;
    for (const auto& r : remotes_)
        if (!r.up) return;
    announced_up_ = true;
    a.notes.push_back({Note::Type::all_up, "", static_cast<long long>(s_.rules.size())});
}

Actions LinkCore::reload(TimePoint now, const std::vector<Rule>& rules) {
    Actions a;
    auto has = [](const std::vector<Rule>& v, const Rule& r) { return std::find(v.begin(), v.end(), r) != v.end(); };
    for (const auto& r : s_.rules)
        if (r.kind != Kind::remote && !has(rules, r)) a.close_listeners.push_back(r);
    for (auto it = remotes_.begin(); it != remotes_.end();) {
        if (has(rules, it->rule)) {
            ++it;
            continue;
        }
        if (it->up && state_ == State::connected) a.cancels.push_back({it->rule, it->bound_port});
        it = remotes_.erase(it);
    }
    for (const auto& r : rules) {
        if (has(s_.rules, r)) continue;
        if (r.kind == Kind::remote) remotes_.push_back(RemoteState{r, false, 0, 0, now});
        else a.open_listeners.push_back(r);
    }
    s_.rules = rules;
    announced_up_ = false;
    if (state_ == State::connected) due_binds(now, a);
    return a;
}

Actions LinkCore::tick(TimePoint now) {
    Actions a;
    if (state_ == State::waiting && now >= next_attempt_) {
        begin_attempt(now, a);
    } else if ((state_ == State::waiting || state_ == State::connecting) && now >= next_probe_ && !probe_in_flight_) {
        a.probe_server = true;
        probe_in_flight_ = true;
    }
    if (state_ != State::connected) return a;
    due_binds(now, a);
    // As OpenSSH's ServerAliveInterval/CountMax: after each interval of silence a keepalive goes out,
    // and the link is lost when keepalive_count of them, all sent after the server was last heard,
    // got no answer within an interval each.
    if (now - std::max(last_rx_, last_keepalive_) < s_.keepalive) return a;
    if (unanswered_ >= s_.keepalive_count) {
        lose(now, "no answer to " + std::to_string(unanswered_) + " keepalives", a);
        return a;
    }
    a.keepalive = true;
    last_keepalive_ = now;
    ++unanswered_;
    if (s_.probe && !net_probe_in_flight_) {
        a.probe_network = true;
        net_probe_in_flight_ = true;
    }
    return a;
}

TimePoint LinkCore::next_deadline() const {
    auto t = TimePoint::max();
    if (state_ == State::waiting) t = std::min(t, next_attempt_);
    if ((state_ == State::waiting || state_ == State::connecting) && !probe_in_flight_) t = std::min(t, next_probe_);
    if (state_ == State::connected) {
        t = std::min(t, std::max(last_rx_, last_keepalive_) + s_.keepalive);
        for (const auto& r : remotes_)
            if (!r.up) t = std::min(t, r.next_try);
    }
    return t;
}

}  // namespace tn::forward
