//! Room previews, as Element Web shows a `world_readable` room before joining it: the room's
//! state and latest messages (`/rooms/{roomId}/initialSync`), then its new events as they come
//! (`/events?room_id=`). Both are deprecated in favour of `/sync` for members, but remain the
//! spec's way to peek; members (and those who left, up to their leave) may call them too.

pub(crate) mod get_current_state;
pub(crate) mod listen_to_new_events;
