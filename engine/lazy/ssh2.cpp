// libssh2, loaded when banger first opens an SSH connection to a guest.
#include <libssh2.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libssh2.so.1";
using Session = LIBSSH2_SESSION;
using Channel = LIBSSH2_CHANNEL;
}  // namespace

BANGER_LAZY(kLib, int, libssh2_channel_close, (Channel * c), (c))
BANGER_LAZY(kLib, int, libssh2_channel_eof, (Channel * c), (c))
BANGER_LAZY(kLib, int, libssh2_channel_free, (Channel * c), (c))
BANGER_LAZY(kLib, int, libssh2_channel_get_exit_signal,
            (Channel * c, char** sig, size_t* sig_len, char** msg, size_t* msg_len, char** lang, size_t* lang_len),
            (c, sig, sig_len, msg, msg_len, lang, lang_len))
BANGER_LAZY(kLib, int, libssh2_channel_get_exit_status, (Channel * c), (c))
BANGER_LAZY(kLib, Channel*, libssh2_channel_open_ex,
            (Session * s, const char* type, unsigned int type_len, unsigned int window, unsigned int packet,
             const char* msg, unsigned int msg_len),
            (s, type, type_len, window, packet, msg, msg_len))
BANGER_LAZY(kLib, int, libssh2_channel_process_startup,
            (Channel * c, const char* req, unsigned int req_len, const char* msg, unsigned int msg_len),
            (c, req, req_len, msg, msg_len))
BANGER_LAZY(kLib, ssize_t, libssh2_channel_read_ex, (Channel * c, int stream, char* buf, size_t len), (c, stream, buf, len))
BANGER_LAZY(kLib, int, libssh2_channel_send_eof, (Channel * c), (c))
BANGER_LAZY(kLib, int, libssh2_channel_wait_closed, (Channel * c), (c))
BANGER_LAZY(kLib, int, libssh2_channel_wait_eof, (Channel * c), (c))
BANGER_LAZY(kLib, ssize_t, libssh2_channel_write_ex, (Channel * c, int stream, const char* buf, size_t len),
            (c, stream, buf, len))
BANGER_LAZY(kLib, void, libssh2_free, (Session * s, void* p), (s, p))
BANGER_LAZY(kLib, int, libssh2_init, (int flags), (flags))
BANGER_LAZY(kLib, Channel*, libssh2_scp_send64,
            (Session * s, const char* path, int mode, libssh2_int64_t size, time_t mtime, time_t atime),
            (s, path, mode, size, mtime, atime))
BANGER_LAZY(kLib, int, libssh2_session_block_directions, (Session * s), (s))
BANGER_LAZY(kLib, int, libssh2_session_disconnect_ex, (Session * s, int reason, const char* desc, const char* lang),
            (s, reason, desc, lang))
BANGER_LAZY(kLib, int, libssh2_session_free, (Session * s), (s))
BANGER_LAZY(kLib, int, libssh2_session_handshake, (Session * s, libssh2_socket_t sock), (s, sock))
BANGER_LAZY(kLib, const char*, libssh2_session_hostkey, (Session * s, size_t* len, int* type), (s, len, type))
BANGER_LAZY(kLib, Session*, libssh2_session_init_ex,
            (LIBSSH2_ALLOC_FUNC((*my_alloc)), LIBSSH2_FREE_FUNC((*my_free)), LIBSSH2_REALLOC_FUNC((*my_realloc)),
             void* abstract),
            (my_alloc, my_free, my_realloc, abstract))
BANGER_LAZY(kLib, int, libssh2_session_last_error, (Session * s, char** msg, int* msg_len, int want_buf),
            (s, msg, msg_len, want_buf))
BANGER_LAZY(kLib, void, libssh2_session_set_blocking, (Session * s, int blocking), (s, blocking))
BANGER_LAZY(kLib, void, libssh2_session_set_timeout, (Session * s, long timeout), (s, timeout))
BANGER_LAZY(kLib, int, libssh2_userauth_publickey_fromfile_ex,
            (Session * s, const char* user, unsigned int user_len, const char* pub, const char* priv, const char* pass),
            (s, user, user_len, pub, priv, pass))
