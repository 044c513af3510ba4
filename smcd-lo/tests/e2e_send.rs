//! Endpoints are `Send`: a pair is built on the main thread, then each
//! endpoint moves into its own thread, which runs the handshake and moves
//! data with the blocking driver over the loopback device.

mod e2e_util;

use std::sync::Arc;

use e2e_util::{Lo, assert_all_given_back, config, loopback};
use embedded_hal_mock::eh1::delay::StdSleep;
use smcd_core::blocking::Blocking;
use smcd_core::clc::{Context, Devices, Handshake, LinkGroups};
use smcd_core::endpoint::testing::{Fixture, FixtureHost, PipeEndpoint};
use smcd_core::endpoint::{Endpoint, Host, Pipe, PipeEnd};

const BYTES: usize = 1 << 20;

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

#[test]
fn engine_types_are_send_on_a_sync_device() {
    assert_sync::<Lo>();
    assert_send::<Devices<'static>>();
    assert_sync::<Devices<'static>>();
    assert_send::<Context<'static>>();
    assert_send::<Handshake<Context<'static>>>();
    assert_send::<Handshake<&'static Host<Lo>>>();
    assert_send::<Handshake<Arc<Host<Lo>>>>();
    assert_send::<Host<Lo>>();
    assert_sync::<Host<Lo>>();
    assert_send::<Host<&'static Lo>>();
    assert_sync::<FixtureHost<'static, Lo>>();
    assert_send::<PipeEnd<'static, 1024>>();
    assert_send::<Endpoint<&'static Host<Lo>, PipeEnd<'static, 1024>>>();
    assert_send::<Endpoint<Arc<Host<Lo>>, PipeEnd<'static, 1024>>>();
    assert_send::<PipeEndpoint<'static, Lo>>();
    assert_sync::<LinkGroups<4>>();
    assert_sync::<Pipe<1024>>();
}

#[test]
fn endpoint_pair_built_here_runs_in_two_threads() {
    let dev = loopback::<64>(7);
    let fx = Fixture::new(&dev, config(64 * 1024));
    let (client, server): (PipeEndpoint<'_, Lo>, PipeEndpoint<'_, Lo>) = fx.pair();
    let data: Vec<u8> = (0..BYTES).map(|i| (i * 13 % 251) as u8).collect();
    let received = std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut server = Blocking::new(server, StdSleep::new());
            assert!(server.handshake().unwrap().is_smcd());
            let (mut got, mut buf) = (Vec::new(), vec![0u8; 50_000]);
            loop {
                let n = server.recv(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(server.close(), Ok(true));
            got
        });
        let data = &data;
        s.spawn(move || {
            let mut client = Blocking::new(client, StdSleep::new());
            assert!(client.handshake().unwrap().is_smcd());
            client.send_all(data).unwrap();
            assert_eq!(client.close(), Ok(true));
        })
        .join()
        .unwrap();
        receiver.join().unwrap()
    });
    assert!(
        received == data,
        "received {} bytes, differing",
        received.len()
    );
    assert_eq!(fx.host.groups().in_use(), 0);
    assert_eq!(dev.stats().dmbs_in_use, 0);
    assert_all_given_back(&dev, &fx.host);
}

#[test]
fn a_host_shared_through_an_arc_runs_a_pair_in_two_threads() {
    let host: Arc<Host<Lo>> = Arc::new(Host::with_config(config(64 * 1024), loopback(8)));
    let pipe = Pipe::<1024>::new();
    let (a, b) = pipe.ends();
    let data: Vec<u8> = (0..BYTES / 4).map(|i| (i * 7 % 253) as u8).collect();
    std::thread::scope(|s| {
        let server_host = Arc::clone(&host);
        s.spawn(move || {
            let mut server = Blocking::accept(server_host, b, StdSleep::new()).unwrap();
            let mut buf = vec![0u8; 30_000];
            let mut got = 0;
            loop {
                let n = server.recv(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got += n;
            }
            assert_eq!(got, BYTES / 4);
            assert_eq!(server.close(), Ok(true));
        });
        let mut client = Blocking::connect(Arc::clone(&host), a, StdSleep::new()).unwrap();
        assert!(client.transport().is_smcd());
        client.send_all(&data).unwrap();
        assert_eq!(client.close(), Ok(true));
    });
    assert_eq!(
        Arc::strong_count(&host),
        1,
        "the endpoints gave their handles back"
    );
    assert_all_given_back(host.device(), &host);
}

#[cfg(feature = "alloc")]
#[test]
fn heap_backed_device_with_a_counting_doorbell_is_sync() {
    use rand::rngs::StdRng;
    use smcd_lo::{CountingDoorbell, HeapMemory, LoopbackDevice};
    type Heap = LoopbackDevice<HeapMemory, StdRng, CountingDoorbell, 8>;
    assert_sync::<Heap>();
    assert_send::<Endpoint<&'static Host<Heap>, PipeEnd<'static, 1024>>>();
}
