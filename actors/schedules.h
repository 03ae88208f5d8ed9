// Schedules (issue 13): one actor per schedule, persisted in the store, hibernating like jobs.
//
// The schedule manager is the directory of live schedule actors. Every operation on a schedule
// (the API's get, put, pause, resume, trigger, delete) goes to its actor; a schedule that is not
// live is read from the store and brought back first. A schedule actor whose next fire is further
// off than `hibernate_after` leaves memory; the manager's tick scans the store's schedule due
// index and brings back those due within half of that. So 100,000 hourly schedules do not hold
// 100,000 live actors.
//
// A fire is a submission to the job manager: the job (with idempotency key (schedule id, fire
// time)) and the schedule advanced past the fire go into one synced commit. A crash at any
// instant therefore never runs a fire twice nor skips one that came due while the relay ran.
// Fires missed while the relay was down come as exactly one catch-up fire at start-up, carrying
// the last missed fire time.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/manager_protocol.h"
#include "actors/store_actor.h"
#include "core/clock.h"
#include "core/cron.h"
#include "core/schedule.h"
#include "actors/intake.h"

namespace fetchrelay::actors {

/// What the API asks of one schedule.
enum class schedule_op { get, put, pause, resume, trigger, erase };

struct schedule_command {
  schedule_op op = schedule_op::get;
  std::optional<schedule_state> definition;  // put: the new definition (cron, request)
  bool created = false;                       // put: the schedule is new (201, not 200)
};

/// The answer to a schedule_command: the HTTP status it maps to (200, 201 created by a put, 202
/// triggered, 404, 429 or 503), the schedule after the operation, the job a trigger made.
struct schedule_answer {
  int http_status = 200;
  std::optional<schedule_state> state;
  std::string job_id;
  std::string error_code;
  std::string message;
};

/// (sched_atom, …): an operation on one schedule.
using sched_atom = caf::atom_constant<caf::atom("sched")>;
/// (fire_atom, generation): self, the timer of the next fire.
using fire_atom = caf::atom_constant<caf::atom("fire")>;
/// (fired_atom, generation, answer): self, the job manager's answer to a fire.
using fired_atom = caf::atom_constant<caf::atom("fired")>;
/// (topic_loaded_atom, topic, reply): self, the topic a fire goes to, read from the store.
using topic_loaded_atom = caf::atom_constant<caf::atom("topicload")>;
/// (sched_loaded_atom, key, schedule): self, a schedule read from the store to be brought back.
using sched_loaded_atom = caf::atom_constant<caf::atom("schedload")>;
/// (tick_atom): self, periodic: bring back the schedules due soon.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// (sched_due_atom, schedules): self, the store's answer to the tick's scan.
using sched_due_atom = caf::atom_constant<caf::atom("scheddue")>;

}  // namespace fetchrelay::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::schedule_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::completion<fetchrelay::actors::schedule_answer>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(fetchrelay::actors::submit_answer)

namespace fetchrelay::actors {

using schedule_actor = caf::typed_actor<
    // The schedule manager: an operation, answered through the completion.
    caf::reacts_to<sched_atom, schedule_command, completion<schedule_answer>>,
    // Self: the fire timer (stale if its generation is old).
    caf::reacts_to<fire_atom, std::uint64_t>,
    // Self: the job manager answered a fire (a trigger's reply, if any, is in the completion).
    caf::reacts_to<fired_atom, std::uint64_t, submit_answer, completion<schedule_answer>>,
    // Self: the topic of a fire to a topic (X-Fetch-Topic), read from the store.
    caf::reacts_to<topic_loaded_atom, result<std::optional<topic_state>>, completion<schedule_answer>>,
    // Self: the store's answer to a write of this schedule.
    caf::reacts_to<committed_atom, status>,
    // The schedule manager, after this actor parked or was deleted: it quits.
    caf::reacts_to<forget_atom>>;

using schedules_actor = caf::typed_actor<
    // API, and a parked schedule actor handing one back: an operation on (tenant, id).
    caf::reacts_to<sched_atom, std::string, std::string, schedule_command, completion<schedule_answer>>,
    // A schedule actor (tenant, id): its next fire is far off and it is synced; forget it.
    caf::reacts_to<hibernated_atom, std::string, std::string>,
    // A schedule actor (tenant, id): it was deleted and quit.
    caf::reacts_to<forget_atom, std::string, std::string>,
    // Self: the store's answer to reading a schedule to bring back (tenant, id).
    caf::reacts_to<sched_loaded_atom, std::string, std::string, result<std::optional<schedule_state>>>,
    caf::reacts_to<tick_atom>,
    caf::reacts_to<sched_due_atom, result<std::vector<persistence::schedule_due>>>>;

struct schedules_options {
  /// A schedule whose next fire is further off than this leaves memory.
  std::chrono::milliseconds hibernate_after{30'000};
  /// How often the store's schedule due index is scanned.
  std::chrono::milliseconds tick_every{1'000};
  /// A fire the job manager refused (busy, over quota, store down) is tried again after this.
  std::chrono::milliseconds retry_fire_after{1'000};
  /// The policy of a URL's route, for fires to a topic whose request names none ("default");
  /// null: "default".
  std::function<std::string(const std::string&)> policy_of_url;
};

/// What each schedule actor shares.
struct schedule_context {
  schedules_options options;
  manager_actor jobs;
  store_actor store;
  schedules_actor schedules;
  std::shared_ptr<const wall_clock> clock;
};

struct schedule_actor_state {
  std::shared_ptr<const schedule_context> ctx;
  schedule_state s;
  std::optional<cron_schedule> cron;  // parsed once
  std::uint64_t generation = 0;       // of the armed timer; a newer one makes it stale
  bool firing = false;                // a fire is with the job manager
  bool parked = false;                // told the manager it hibernates: hand operations back
  bool erased = false;                // deleted: operations answer 404 until it quits
  bool keep = false;                  // brought back for an operation: do not park before it
  int unsynced = 0;                   // writes sent and not yet answered
  bool write_failed = false;          // the last write failed: memory is ahead of the store
  schedule_state after;               // the schedule as the fire with the job manager leaves it
  submission fire_sub;                // a fire to a topic, waiting for the topic
  std::int64_t retry_at_ms = 0;       // a refused fire is tried again no sooner than this
  std::deque<std::pair<schedule_command, completion<schedule_answer>>> held;  // arrived while firing
};

/// `keep`: brought back for an operation (do not park before it arrives).
schedule_actor::behavior_type schedule_actor_impl(schedule_actor::stateful_pointer<schedule_actor_state> self,
                                                  schedule_state state, std::shared_ptr<const schedule_context> ctx,
                                                  bool keep);

struct schedules_state {
  std::shared_ptr<schedule_context> ctx;
  std::unordered_map<std::string, schedule_actor> live;  // by tenant "\0" id
  /// Schedules being read from the store, with the operations waiting for them.
  std::unordered_map<std::string, std::vector<std::pair<schedule_command, completion<schedule_answer>>>> loading;
  bool scanning = false;
  /// Where the next scan goes on from: the last entry of a full page (nullopt: the start).
  std::optional<persistence::schedule_due> scan_after;
};

/// The first fire of `cron` after `after_ms`, or 0 when it has none.
std::int64_t next_fire_or_zero(const std::string& cron, std::int64_t after_ms);

schedules_actor::behavior_type schedule_manager(schedules_actor::stateful_pointer<schedules_state> self,
                                                schedules_options options, manager_actor jobs, store_actor store,
                                                std::shared_ptr<const wall_clock> clock);

}  // namespace fetchrelay::actors
