"""The loop's networking API: DNS, sock_* operations, connections and servers.

This is the part of the loop that runs once per operation or per connection
(address resolution, connecting, accepting, setting up transports); the data
path of a connection is C (csrc/transport.c). Semantics and messages follow
asyncio's selector event loop; the Server object is asyncio's own, driven
through the two methods it expects of a loop (_start_serving, _stop_serving).
"""
import collections
import contextvars
import errno
import functools
import inspect
import itertools
import os
import socket
from asyncio import base_events, constants, staggered, tasks, trsock, unix_events
from asyncio.log import logger

from . import _compat, _core
from ._transports import DatagramTransport, SocketTransport

try:
    import ssl
except ImportError:  # pragma: no cover - CPython built without ssl
    ssl = None

_HAS_IPV6 = hasattr(socket, 'AF_INET6')
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6) if _HAS_IPV6 else (socket.AF_INET,)


# --------------------------------------------------------------------------
# Argument checks shared by the methods below


def _check_ssl_socket(sock):
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _check_stream_socket(sock):
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f'A Stream Socket was expected, got {sock!r}')


def _check_unix_stream_socket(sock):
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f'A UNIX Domain Stream Socket was expected, got {sock!r}')


def _check_ssl_arguments(ssl, server_hostname=None, ssl_handshake_timeout=None,
                         ssl_shutdown_timeout=None):
    if server_hostname is not None and not ssl:
        raise ValueError('server_hostname is only meaningful with ssl')
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError('ssl_handshake_timeout is only meaningful with ssl')
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError('ssl_shutdown_timeout is only meaningful with ssl')


def _numeric_sockaddr(host, port, family, socktype, proto, flowinfo=0, scopeid=0):
    """The getaddrinfo() answer for a numeric host, without a lookup; None
    when host must be looked up. The rules are asyncio's (_ipaddr_info):
    the protocol follows the socket type, a port is anything int() takes,
    and the extra items of an IPv6 address are its flow info and scope."""
    if proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP) or host is None:
        return None
    if socktype == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif socktype == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None  # type 0 answers once per socket type
    if port is None or (isinstance(port, (str, bytes)) and not port):
        port = 0
    else:
        try:
            port = int(port)  # a service name ("http") is looked up
        except (TypeError, ValueError):
            return None
    if isinstance(host, bytes):
        host = host.decode('idna')
    if '%' in host:
        return None  # inet_pton() takes no IPv6 zone ('::1%lo')
    for fam in _INET_FAMILIES:
        if family not in (socket.AF_UNSPEC, fam):
            continue
        try:
            socket.inet_pton(fam, host)
        except OSError:
            continue
        addr = (host, port) if fam == socket.AF_INET else (host, port, flowinfo, scopeid)
        return fam, socktype, proto, '', addr
    return None


def _interleave_by_family(infos, first_family_count=1):
    """Alternate address families (RFC 8305), keeping each family's order."""
    by_family = collections.OrderedDict()
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    ordered = []
    if first_family_count > 1:
        ordered.extend(lists[0][:first_family_count - 1])
        lists[0] = lists[0][first_family_count - 1:]
    for group in itertools.zip_longest(*lists):
        ordered.extend(info for info in group if info is not None)
    return ordered


def _is_abstract_unix_address(path):
    return path[0] in (0, '\x00')


def _remove_stale_unix_socket(path):
    """A socket file left at path by an earlier server goes (not in the
    abstract namespace, and only a socket), as asyncio does before bind().
    (The system calls are C: csrc/unixsocket.c.)"""
    if _is_abstract_unix_address(path):
        return
    try:
        _core.remove_stale_unix_socket(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # The directory may let us create the socket and no more.
        logger.error('Unable to check or remove stale UNIX socket %r: %r', path, err)


class NetworkMixin:
    """Networking methods of pyasync.Loop (see the module docstring)."""

    # ----------------------------------------------------------------------
    # Which fds belong to a transport: sock_* refuse them (add_reader() and
    # the others ask the same table in C, csrc/iowatch.c).

    def _ensure_fd_no_transport(self, fd):
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transport_of(fileno) if 0 <= fileno <= 0x7fffffff else None
        if transport is not None and not transport.is_closing():
            raise RuntimeError(
                f'File descriptor {fd!r} is used by transport {transport!r}')

    # ----------------------------------------------------------------------
    # DNS

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        if self.get_debug():
            # Logged and timed, in the executor even for a numeric host.
            return await self.run_in_executor(
                None, self._getaddrinfo_logged, host, port, family, type, proto, flags)
        try:
            numeric = _numeric_sockaddr(host, port, family, type, proto) is not None
        except (TypeError, UnicodeError):
            numeric = False  # socket.getaddrinfo() says what is wrong, in the executor
        if numeric:
            # A numeric host needs no lookup: answer without the executor.
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags)

    def _getaddrinfo_logged(self, host, port, family, type, proto, flags):
        """socket.getaddrinfo() with the debug log asyncio writes for it (at
        INFO when slower than slow_callback_duration)."""
        what = [f'{host}:{port!r}']
        what += [f'{name}={value!r}' for name, value in
                 (('family', family), ('type', type), ('proto', proto), ('flags', flags))
                 if value]
        what = ', '.join(what)
        logger.debug('Get address info %s', what)
        started = self.time()
        answer = socket.getaddrinfo(host, port, family, type, proto, flags)
        took = self.time() - started
        report = f'Getting address info {what} took {took * 1e3:.3f}ms: {answer!r}'
        if took >= self.slow_callback_duration:
            logger.info(report)
        else:
            logger.debug(report)
        return answer

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    async def _ensure_resolved(self, address, *, family=0, type=socket.SOCK_STREAM,
                               proto=0, flags=0):
        host, port = address[:2]
        info = _numeric_sockaddr(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        return await self.getaddrinfo(host, port, family=family, type=type,
                                      proto=proto, flags=flags)

    # ----------------------------------------------------------------------
    # sock_* operations: try the call first, wait for readiness only when
    # it would block. sock_recv(), sock_recv_into(), sock_recvfrom(),
    # sock_recvfrom_into(), sock_sendto(), sock_sendall() and sock_accept()
    # are C (csrc/sockop.c); sock_connect() waits here.

    def _check_sock(self, sock):
        _check_ssl_socket(sock)
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _sock_wait(self, sock, writable, attempt):
        """A future for the result (or exception) of attempt(), called each
        time sock is ready until it stops raising BlockingIOError. (attempt
        looks the socket's method up on each call, as asyncio does.)

        Callers await it without keeping it in a variable: a frame that
        holds the future would be kept by the traceback of the exception
        that the future holds, a cycle only the collector could free."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        watch = self._add_writer if writable else self._add_reader
        handle = watch(fd, self._sock_retry, fut, attempt)
        fut.add_done_callback(functools.partial(self._sock_unwatch, fd, writable, handle))
        return fut

    @staticmethod
    def _sock_retry(fut, attempt):
        if fut.done():
            return
        try:
            result = attempt()
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        finally:
            # This frame is in the traceback of the exception given to fut.
            fut = None

    def _sock_unwatch(self, fd, writable, handle, fut):
        if not handle.cancelled():
            if writable:
                self._remove_writer(fd)
            else:
                self._remove_reader(fd)

    async def sock_connect(self, sock, address):
        self._check_sock(sock)
        if sock.family in _INET_FAMILIES:
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto)
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass

        def connected():
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == errno.EINPROGRESS:
                raise BlockingIOError
            if err != 0:
                raise OSError(err, f'Connect call failed {address}')
        await self._sock_wait(sock, True, connected)

    # ----------------------------------------------------------------------
    # Transports

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None,
                               server=None):
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None,
                            server=None, ssl_handshake_timeout=None,
                            ssl_shutdown_timeout=None, call_connection_made=True):
        ssl_protocol = _core.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=call_connection_made)
        SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    async def _create_connection_transport(self, sock, protocol_factory, ssl, server_hostname,
                                           server_side=False, ssl_handshake_timeout=None,
                                           ssl_shutdown_timeout=None):
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            transport = self._make_ssl_transport(
                sock, protocol, sslcontext, waiter, server_side=server_side,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        finally:
            waiter = None  # it holds the exception whose traceback holds this frame
        return transport, protocol

    # ----------------------------------------------------------------------
    # Connections

    async def _connect_sock(self, exceptions, addr_info, local_addr_infos=None):
        """Connect one address of create_connection(); errors are collected."""
        my_exceptions = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = (f'error while attempting to bind on address {laddr!r}: '
                               f'{_compat.bind_error_detail(exc)}')
                        my_exceptions.append(OSError(exc.errno, msg))
                else:
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with family={family!r} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            exceptions = my_exceptions = None

    async def create_connection(self, protocol_factory, host=None, port=None, *, ssl=None,
                                family=0, proto=0, flags=0, sock=None, local_addr=None,
                                server_hostname=None, ssl_handshake_timeout=None,
                                ssl_shutdown_timeout=None, happy_eyeballs_delay=None,
                                interleave=None, **kwargs):
        all_errors = _compat.pop_all_errors(kwargs, NetworkMixin.create_connection.__qualname__)
        if server_hostname is None and ssl:
            if not host:
                raise ValueError('You must set server_hostname when using ssl without a host')
            server_hostname = host
        _check_ssl_arguments(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError('host/port and sock can not be specified at the same time')
            sock = await self._connect_to(host, port, family, proto, flags, local_addr,
                                          happy_eyeballs_delay, interleave, all_errors)
        else:
            if sock is None:
                raise ValueError('host and port was not specified and no sock specified')
            _check_stream_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self.get_debug():
            logger.debug("%r connected to %s:%r: (%r, %r)",
                         transport.get_extra_info('socket'), host, port, transport, protocol)
        return transport, protocol

    async def _connect_to(self, host, port, family, proto, flags, local_addr,
                          happy_eyeballs_delay, interleave, all_errors):
        infos = await self._ensure_resolved((host, port), family=family,
                                            type=socket.SOCK_STREAM, proto=proto, flags=flags)
        if not infos:
            raise OSError('getaddrinfo() returned empty list')
        laddr_infos = None
        if local_addr is not None:
            laddr_infos = await self._ensure_resolved(
                local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags)
            if not laddr_infos:
                raise OSError('getaddrinfo() returned empty list')
        if interleave:
            infos = _interleave_by_family(infos, interleave)
        errors = []
        sock = None
        if happy_eyeballs_delay is None:
            for info in infos:
                try:
                    sock = await self._connect_sock(errors, info, laddr_infos)
                    break
                except OSError:
                    continue
        else:
            sock, _, _ = await staggered.staggered_race(
                (functools.partial(self._connect_sock, errors, info, laddr_infos)
                 for info in infos),
                happy_eyeballs_delay, loop=self)
        if sock is not None:
            return sock
        errors = [exc for attempt in errors for exc in attempt]
        try:
            if all_errors:
                raise ExceptionGroup("create_connection failed", errors)
            if len(errors) == 1:
                raise errors[0]
            first = str(errors[0])
            if all(str(exc) == first for exc in errors):
                raise errors[0]
            raise OSError('Multiple exceptions: {}'.format(', '.join(str(exc) for exc in errors)))
        finally:
            errors = None

    async def create_unix_connection(self, protocol_factory, path=None, *, ssl=None, sock=None,
                                     server_hostname=None, ssl_handshake_timeout=None,
                                     ssl_shutdown_timeout=None):
        assert server_hostname is None or isinstance(server_hostname, str)  # as asyncio
        if ssl:
            if server_hostname is None:
                raise ValueError('you have to pass server_hostname when using ssl')
        else:
            _check_ssl_arguments(ssl, server_hostname, ssl_handshake_timeout,
                                 ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError('path and sock can not be specified at the same time')
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError('no path and sock were specified')
            _check_unix_stream_socket(sock)
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def connect_accepted_socket(self, protocol_factory, sock, *, ssl=None,
                                      ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        _check_stream_socket(sock)
        _check_ssl_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        _check_ssl_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, '', server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self.get_debug():
            logger.debug("%r handled: (%r, %r)",
                         transport.get_extra_info('socket'), transport, protocol)
        return transport, protocol

    # ----------------------------------------------------------------------
    # Servers

    async def create_server(self, protocol_factory, host=None, port=None, *,
                            family=socket.AF_UNSPEC, flags=socket.AI_PASSIVE, sock=None,
                            backlog=100, ssl=None, reuse_address=None, reuse_port=None,
                            ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                            start_serving=True, **kwargs):
        keep_alive = _compat.pop_keep_alive(kwargs, NetworkMixin.create_server.__qualname__)
        if isinstance(ssl, bool):
            raise TypeError('ssl argument must be an SSLContext or None')
        # Only create_server() asks whether ssl is None, not whether it is true.
        _check_ssl_arguments(ssl is not None, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        if sock is not None:
            _check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError('host/port and sock can not be specified at the same time')
            if reuse_address is None:
                reuse_address = os.name == "posix"
            sockets = await self._bind_server_sockets(
                host, port, family, flags, backlog, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError('Neither host/port nor sock were specified')
            _check_stream_socket(sock)
            sockets = [sock]
        server = await self._serve(sockets, sock is None, protocol_factory, ssl, backlog,
                                   ssl_handshake_timeout, ssl_shutdown_timeout, start_serving)
        if self.get_debug():
            logger.info("%r is serving", server)
        return server

    async def _serve(self, sockets, made_here, protocol_factory, ssl, backlog,
                     ssl_handshake_timeout, ssl_shutdown_timeout, start_serving):
        """The asyncio.Server of sockets, serving unless start_serving is
        false. If that fails (listen() raises, the caller is cancelled),
        sockets made_here are closed, their server too if it was made:
        nobody else has them."""
        server = None
        try:
            for sock in sockets:
                sock.setblocking(False)
            server = base_events.Server(self, sockets, protocol_factory, ssl, backlog,
                                        ssl_handshake_timeout, ssl_shutdown_timeout)
            if start_serving:
                server._start_serving()
                # One iteration, so that the accept watchers are in place.
                await _compat.sleep0()
        except BaseException:
            if made_here:
                if server is not None:
                    server.close()
                else:
                    for sock in sockets:
                        sock.close()
            raise
        return server

    async def _server_addresses(self, host, port, family, flags):
        infos = await self._ensure_resolved((host, port), family=family,
                                            type=socket.SOCK_STREAM, flags=flags)
        if not infos:
            raise OSError(f'getaddrinfo({host!r}) returned empty list')
        return infos

    async def _bind_server_sockets(self, host, port, family, flags, backlog, reuse_address,
                                   reuse_port, keep_alive):
        if host == '':
            hosts = [None]      # every interface, as None: asyncio's rule
        elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
            hosts = [host]
        else:
            hosts = host
        # Looked up together, as asyncio does.
        lookups = [self._server_addresses(h, port, family, flags) for h in hosts]
        infos = set(itertools.chain.from_iterable(await tasks.gather(*lookups)))
        sockets = []
        completed = False
        try:
            for af, socktype, proto, _, sa in infos:
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    if self.get_debug():
                        logger.warning('create_server() failed to create socket.socket(%r, %r, %r)',
                                       af, socktype, proto, exc_info=True)
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    _set_reuseport(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, 'IPPROTO_IPV6'):
                    # Each family gets its own socket: no dual-stack v6 socket.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(sa)
                except OSError as err:
                    msg = (f'error while attempting to bind on address {sa!r}: '
                           f'{_compat.bind_error_detail(err)}')
                    if err.errno == errno.EADDRNOTAVAIL and _compat.SKIP_UNAVAILABLE_SERVER_ADDRESS:
                        # An address the host lacks (e.g. ::1 without IPv6).
                        sockets.pop()
                        sock.close()
                        if self.get_debug():
                            logger.warning(msg)
                        continue
                    raise OSError(err.errno, msg) from None
            if not sockets and _compat.SKIP_UNAVAILABLE_SERVER_ADDRESS:
                # (came with the skipping: earlier versions serve on none)
                raise OSError('could not bind on any address out of %r'
                              % ([info[4] for info in infos],))
            completed = True
        finally:
            if not completed:
                for sock in sockets:
                    sock.close()
        return sockets

    async def create_unix_server(self, protocol_factory, path=None, *, sock=None, backlog=100,
                                 ssl=None, ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                                 start_serving=True, **kwargs):
        cleanup_socket = _compat.pop_cleanup_socket(
            kwargs, NetworkMixin.create_unix_server.__qualname__)
        if isinstance(ssl, bool):
            raise TypeError('ssl argument must be an SSLContext or None')
        _check_ssl_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        made_here = path is not None
        if made_here:
            if sock is not None:
                raise ValueError('path and sock can not be specified at the same time')
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                _remove_stale_unix_socket(path)
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f'Address {path!r} is already in use') \
                        from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError('path was not specified, and no sock specified')
            _check_unix_stream_socket(sock)
        try:
            if cleanup_socket:
                path = sock.getsockname()
                if not _is_abstract_unix_address(path):
                    try:
                        # Closing the server removes the file if it is still this one.
                        self._unix_server_sockets[sock] = _core.unix_socket_inode(path)
                    except FileNotFoundError:
                        pass
            return await self._serve([sock], made_here, protocol_factory, ssl, backlog,
                                     ssl_handshake_timeout, ssl_shutdown_timeout, start_serving)
        except BaseException:
            if made_here:
                sock.close()
            self._unix_server_sockets.pop(sock, None)
            raise

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100,
                       ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                       ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
        # The accept path is C (csrc/accept.c): it sets connections up itself
        # (TLS ones too) and hands them to on_connection in debug mode.
        def on_connection(conn, addr):
            if self.get_debug():
                logger.debug("%r got a new connection from %r: %r", server, addr, conn)
            extra = {'peername': addr}
            if sslcontext is None:
                # In a copy of the server's context, as asyncio's task per
                # connection (csrc/accept.c, serve_here()).
                contextvars.copy_context().run(self._serve_plain, protocol_factory, conn,
                                               extra, server)
            else:
                self.create_task(self._accept_connection2(
                    protocol_factory, conn, extra, sslcontext, server,
                    ssl_handshake_timeout, ssl_shutdown_timeout))

        def on_resource_error(exc):
            # Out of descriptors or memory: log, stop accepting for a while,
            # and go on serving the connections we have.
            self.call_exception_handler({
                'message': 'socket.accept() out of system resource',
                'exception': exc,
                'socket': trsock.TransportSocket(sock),
            })
            self._remove_reader(sock.fileno())
            self.call_later(constants.ACCEPT_RETRY_DELAY, self._start_serving,
                            protocol_factory, sock, sslcontext, server, backlog,
                            ssl_handshake_timeout, ssl_shutdown_timeout)

        ssl_args = None
        if sslcontext is not None:
            ssl_args = (sslcontext, ssl_handshake_timeout, ssl_shutdown_timeout)
        acceptor = _core.Acceptor(self, sock, protocol_factory, server, backlog, SocketTransport,
                                  on_connection, on_resource_error, True, ssl_args)
        self._add_reader(sock.fileno(), acceptor)

    def _stop_serving(self, sock):
        self._remove_reader(sock.fileno())
        inode = self._unix_server_sockets.pop(sock, None)
        if inode is not None:
            # Remove the socket file of a Unix server, if it is still ours.
            path = sock.getsockname()
            try:
                _core.remove_unix_socket(path, inode)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error('Unable to clean up listening UNIX socket %r: %r', path, err)
        sock.close()

    def _serve_plain(self, protocol_factory, conn, extra, server):
        # No TLS handshake to wait for: set the transport up right here.
        try:
            protocol = protocol_factory()
            self._make_socket_transport(conn, protocol, extra=extra, server=server)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            conn.close()
            # Like asyncio: a failed set-up is reported in debug mode only.
            if self.get_debug():
                self.call_exception_handler({
                    'message': 'Error on transport creation for incoming connection',
                    'exception': exc,
                })

    async def _accept_connection2(self, protocol_factory, conn, extra, sslcontext, server,
                                  ssl_handshake_timeout, ssl_shutdown_timeout):
        protocol = None
        transport = None
        waiter = None
        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            transport = self._make_ssl_transport(
                conn, protocol, sslcontext, waiter=waiter, server_side=True, extra=extra,
                server=server, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
            try:
                await waiter
            except BaseException:
                waiter = None  # it holds the exception whose traceback holds this frame
                transport.close()
                # The handshake failed: let the transport's close run.
                await _compat.sleep0()
                raise
        except BaseException as exc:
            if transport is None:
                # No transport took the socket over (protocol_factory() or
                # the set-up failed): close it now, not when it is collected.
                conn.close()
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            if self.get_debug():
                context = {
                    'message': 'Error on transport creation for incoming connection',
                    'exception': exc,
                }
                if protocol is not None:
                    context['protocol'] = protocol
                if transport is not None:
                    context['transport'] = transport
                self.call_exception_handler(context)
                context = None  # it holds exc, whose traceback holds this frame

    # ----------------------------------------------------------------------
    # Datagrams

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        return DatagramTransport(self, sock, protocol, address, waiter, extra)

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                       remote_addr=None, *, family=0, proto=0, flags=0,
                                       reuse_port=None, allow_broadcast=None, sock=None):
        if sock is not None:
            _compat.check_datagram_socket(sock)
            modifiers = dict(local_addr=local_addr, remote_addr=remote_addr, family=family,
                             proto=proto, flags=flags, reuse_port=reuse_port,
                             allow_broadcast=allow_broadcast)
            if any(modifiers.values()):
                problems = ', '.join(f'{k}={v}' for k, v in modifiers.items() if v)
                raise ValueError(f'socket modifier keyword arguments can not be used '
                                 f'when sock is specified. ({problems})')
            sock.setblocking(False)
            r_addr = None
        else:
            candidates = await self._datagram_candidates(local_addr, remote_addr, family,
                                                         proto, flags)
            sock, r_addr = await self._open_datagram_socket(
                candidates, local_addr, remote_addr, reuse_port, allow_broadcast)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        if self.get_debug():
            if local_addr:
                logger.info("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                            local_addr, remote_addr, transport, protocol)
            else:
                logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)",
                             remote_addr, transport, protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        finally:
            waiter = None
        return transport, protocol

    async def _datagram_candidates(self, local_addr, remote_addr, family, proto, flags):
        """[((family, proto), (local address, remote address))] to try in turn."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError('unexpected address family')
            return [((family, proto), (None, None))]
        if hasattr(socket, 'AF_UNIX') and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError('string is expected')
            if local_addr:
                _remove_stale_unix_socket(local_addr)
            return [((family, proto), (local_addr, remote_addr))]
        pairs = {}  # (family, proto) -> [local, remote], in resolution order
        for index, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError('2-tuple is expected')
            infos = await self._ensure_resolved(addr, family=family, type=socket.SOCK_DGRAM,
                                                proto=proto, flags=flags)
            if not infos:
                raise OSError('getaddrinfo() returned empty list')
            for fam, _, pro, _, address in infos:
                pairs.setdefault((fam, pro), [None, None])[index] = address
        candidates = [(key, pair) for key, pair in pairs.items()
                      if not ((local_addr and pair[0] is None) or
                              (remote_addr and pair[1] is None))]
        if not candidates:
            raise ValueError('can not get address information')
        return candidates

    async def _open_datagram_socket(self, candidates, local_addr, remote_addr, reuse_port,
                                    allow_broadcast):
        errors = []
        for (family, proto), (local_address, remote_address) in candidates:
            sock = None
            try:
                sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                if reuse_port:
                    _set_reuseport(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                r_addr = None
                if remote_addr:
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote_address)
                    r_addr = remote_address
                return sock, r_addr
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        try:
            raise errors[0]
        finally:
            errors = None  # the list would keep the exception, and it this frame

    # ----------------------------------------------------------------------
    # TLS on an existing transport

    async def start_tls(self, transport, protocol, sslcontext, *, server_side=False,
                        server_hostname=None, ssl_handshake_timeout=None,
                        ssl_shutdown_timeout=None):
        if ssl is None:
            raise RuntimeError('Python ssl module is not available')
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(f'sslcontext is expected to be an instance of ssl.SSLContext, '
                            f'got {sslcontext!r}')
        if not getattr(transport, '_start_tls_compatible', False):
            raise TypeError(f'transport {transport!r} is not supported by start_tls()')
        waiter = self.create_future()
        ssl_protocol = _core.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False)
        # Nothing may be read in between: the handshake bytes belong to TLS.
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        finally:
            waiter = None
        return ssl_protocol._app_transport


# These take the keywords that came with later versions (all_errors,
# keep_alive, cleanup_socket) through **kwargs, checked by _compat against
# the running version. Their signatures are asyncio's own, so that a library
# that reads them (to see what the loop accepts) sees what asyncio offers.
for _name, _owner in (('create_connection', base_events.BaseEventLoop),
                      ('create_server', base_events.BaseEventLoop),
                      ('create_unix_server', unix_events._UnixSelectorEventLoop)):
    getattr(NetworkMixin, _name).__signature__ = inspect.signature(getattr(_owner, _name))
del _name, _owner


def _set_reuseport(sock):
    if not hasattr(socket, 'SO_REUSEPORT'):
        raise ValueError('reuse_port not supported by socket module')
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError('reuse_port not supported by socket module, SO_REUSEPORT defined '
                         'but not implemented.')
