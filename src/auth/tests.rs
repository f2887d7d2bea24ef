//! Passwords, tokens and the throttles, on paused time where they expire.
use super::*;

fn throttle(max_tracked: usize) -> LoginThrottle {
    LoginThrottle::new(&Limits {
        login_tracked_accounts: max_tracked,
        ..Limits::default()
    })
}

#[test]
fn the_fifth_attempt_locks_and_the_lock_is_not_extended() {
    let throttle = throttle(100);
    for _ in 0..5 {
        assert!(throttle.begin("alice").is_ok());
    }
    for _ in 0..3 {
        let Err(ApiError::RateLimited { retry_after_secs }) = throttle.begin("alice") else {
            panic!("expected a lock");
        };
        assert!((59..=60).contains(&retry_after_secs));
    }
    assert!(throttle.begin("bob").is_ok());
}

#[test]
fn a_right_password_clears_the_count() {
    let throttle = throttle(100);
    for _ in 0..4 {
        throttle.begin("alice").unwrap();
    }
    throttle.succeeded("alice");
    for _ in 0..4 {
        assert!(throttle.begin("alice").is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn a_lock_ends_and_expired_entries_are_purged() {
    let throttle = throttle(100);
    for _ in 0..5 {
        throttle.begin("alice").unwrap();
    }
    assert!(throttle.begin("alice").is_err(), "locked");
    tokio::time::advance(Duration::from_secs(59)).await;
    throttle.purge_expired();
    assert_eq!(
        throttle.tracked(),
        1,
        "still locked a second before the end"
    );
    assert!(throttle.begin("alice").is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    throttle.purge_expired();
    assert_eq!(throttle.tracked(), 0, "the lock and its attempts are gone");
    assert!(
        throttle.begin("alice").is_ok(),
        "and the account may try again"
    );
}

/// A full table refuses new accounts (`busy`) and never forgets one
/// with failures: flooding other names does not reset a victim's count.
#[tokio::test(start_paused = true)]
async fn a_full_table_refuses_new_accounts_and_keeps_failures() {
    let throttle = throttle(10);
    for _ in 0..4 {
        throttle.begin("victim").unwrap();
    }
    for i in 0..9 {
        throttle.begin(&format!("flood{i}")).unwrap();
    }
    for i in 9..100 {
        let Err(ApiError::Busy {
            retry_after_secs, ..
        }) = throttle.begin(&format!("flood{i}"))
        else {
            panic!("a full table takes no new account");
        };
        assert_eq!(retry_after_secs, 60);
    }
    assert_eq!(throttle.tracked(), 10, "bounded");
    // The victim's fifth attempt still locks it.
    throttle.begin("victim").unwrap();
    assert!(matches!(
        throttle.begin("victim"),
        Err(ApiError::RateLimited { .. })
    ));
    // Once the flood's entries expire, new accounts are taken again.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(throttle.begin("newcomer").is_ok());
}

#[test]
fn addresses_are_throttled_per_route_and_ipv6_per_64() {
    let throttles = AddressThrottles::new(&Limits {
        auth_attempts_per_minute: 3,
        ..Limits::default()
    });
    let home: IpAddr = "2001:db8:1:2::10".parse().unwrap();
    let same_home: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
    let elsewhere: IpAddr = "198.51.100.4".parse().unwrap();
    for _ in 0..3 {
        throttles.check(AuthRoute::Login, home).unwrap();
        throttles.check(AuthRoute::Register, home).unwrap();
    }
    for _ in 0..3 {
        throttles.login_failed(home);
    }
    let Err(ApiError::RateLimited { retry_after_secs }) =
        throttles.check(AuthRoute::Login, same_home)
    else {
        panic!("the /64 shares one count");
    };
    assert!((1..=60).contains(&retry_after_secs));
    assert!(
        throttles.check(AuthRoute::Register, elsewhere).is_ok(),
        "routes count apart"
    );
    assert!(
        throttles.check(AuthRoute::Register, home).is_err(),
        "registrations count every attempt"
    );
    assert!(throttles.check(AuthRoute::Login, elsewhere).is_ok());
}

#[test]
fn tracked_addresses_stay_bounded() {
    let throttles = AddressThrottles::new(&Limits {
        auth_tracked_addresses: 10,
        ..Limits::default()
    });
    let refused = (0..100u32)
        .filter(|n| {
            let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            throttles.check(AuthRoute::Register, client).is_err()
        })
        .count();
    assert_eq!(refused, 90);
    assert!(throttles.tracked() <= 10);
}

#[test]
fn tokens_are_random_and_hashes_stable() {
    let a = new_token().unwrap();
    let b = new_token().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 64);
    assert_eq!(hash_token(&a), hash_token(&a));
    assert_ne!(hash_token(&a), a);
}
