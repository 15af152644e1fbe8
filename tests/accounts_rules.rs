/// The rules of accounts, checked through the module's own API (there are
/// no HTTP routes for it yet): a name is unique after Unicode NFC and full
/// case folding — "Ada" and "ada", "Straße" and "STRASSE", "é" typed as one
/// character or as "e" plus an accent are one name — and is shown as typed;
/// names follow the author's rules and passwords are 8 to 128 characters;
/// an unknown name and a wrong password give one and the same answer; the
/// teacher's name can only be created with the teacher token; two people
/// creating the same name at the same moment get exactly one account
/// between them, even through two handles on one database file; and guests
/// cannot borrow an account's name.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weebsockets::accounts::{
    AccountError, Accounts, AccountsConfig, ManualClock, PasswordParams, Role, SignInLimits,
};

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const PASSWORD: &str = "correct horse";

/// Cheap hashes and no sign-in limits: these tests are about the rules.
fn fast() -> AccountsConfig {
    AccountsConfig {
        password: PasswordParams::FAST_FOR_TESTS,
        sign_in_limits: SignInLimits::UNLIMITED,
        hash_concurrency: 2,
        ..AccountsConfig::default()
    }
}

fn in_memory(config: AccountsConfig) -> Accounts {
    Accounts::open(Path::new(":memory:"), config).expect("in-memory accounts open")
}

fn assert_taken(result: Result<impl std::fmt::Debug, AccountError>) {
    match result {
        Err(err @ AccountError::NameTaken) => {
            assert_eq!(err.code(), "name_taken");
            assert_eq!(err.status(), 409);
        }
        other => panic!("expected name_taken, got {other:?}"),
    }
}

#[tokio::test]
async fn names_are_unique_after_nfc_and_full_case_folding() {
    let accounts = in_memory(fast());
    accounts.create("Ada", PASSWORD, false).await.unwrap();
    assert_taken(accounts.create("ada", PASSWORD, false).await);
    assert_taken(accounts.create("  ADA ", PASSWORD, false).await);

    accounts.create("Straße", PASSWORD, false).await.unwrap();
    assert_taken(accounts.create("STRASSE", PASSWORD, false).await);
    assert_taken(accounts.create("strasse", PASSWORD, false).await);

    accounts.create("Jos\u{e9}", PASSWORD, false).await.unwrap();
    assert_taken(accounts.create("Jose\u{301}", PASSWORD, false).await);
    assert_taken(accounts.create("JOSE\u{301}", PASSWORD, false).await);

    // Different names are different.
    accounts.create("Adam", PASSWORD, false).await.unwrap();
    accounts.create("Jose", PASSWORD, false).await.unwrap();
}

#[tokio::test]
async fn sign_in_works_in_any_case_and_shows_the_name_as_typed() {
    let accounts = in_memory(fast());
    let created = accounts.create("  Ada ", PASSWORD, false).await.unwrap();
    assert_eq!(&*created.session.name, "Ada");
    assert_eq!(created.session.role, Role::Student);

    let signed_in = accounts.sign_in("aDA", PASSWORD, HOME).await.unwrap();
    assert_eq!(&*signed_in.session.name, "Ada");

    accounts.create("Straße", PASSWORD, false).await.unwrap();
    let s = accounts.sign_in("STRASSE", PASSWORD, HOME).await.unwrap();
    assert_eq!(&*s.session.name, "Straße");

    // Typed with a combining accent, shown (and stored) in NFC.
    let jose = accounts
        .create("Jose\u{301}", PASSWORD, false)
        .await
        .unwrap();
    assert_eq!(&*jose.session.name, "Jos\u{e9}");
    let again = accounts.sign_in("JOS\u{c9}", PASSWORD, HOME).await.unwrap();
    assert_eq!(&*again.session.name, "Jos\u{e9}");
}

#[tokio::test]
async fn names_follow_the_authors_rules_and_passwords_their_bounds() {
    let accounts = in_memory(fast());
    for bad in [
        "",
        "   ",
        &"a".repeat(33),
        "ada\u{0}",
        "\u{7}ada",
        "ada\u{9b}",
    ] {
        match accounts.create(bad, PASSWORD, false).await {
            Err(err @ AccountError::InvalidName(_)) => {
                assert_eq!(err.code(), "invalid_name");
                assert_eq!(err.status(), 422);
            }
            other => panic!("{bad:?}: expected invalid_name, got {other:?}"),
        }
    }
    accounts
        .create(&"a".repeat(32), PASSWORD, false)
        .await
        .unwrap();

    for (name, password) in [("p1", "1234567"), ("p2", ""), ("p3", &*"x".repeat(129))] {
        match accounts.create(name, password, false).await {
            Err(err @ AccountError::InvalidPassword { .. }) => {
                assert_eq!(err.code(), "invalid_password");
                assert_eq!(err.status(), 422);
            }
            other => panic!("{password:?}: expected invalid_password, got {other:?}"),
        }
    }
    // A refused password took no name.
    accounts.create("p1", "12345678", false).await.unwrap();
    accounts
        .create("p3", &"x".repeat(128), false)
        .await
        .unwrap();
    // Eight characters, sixteen bytes: fine.
    accounts.create("p4", "ääääääää", false).await.unwrap();

    // Passwords are taken as typed: the trailing space is part of it.
    accounts.create("spacey", "password ", false).await.unwrap();
    assert!(matches!(
        accounts.sign_in("spacey", "password", HOME).await,
        Err(AccountError::BadCredentials)
    ));
    accounts.sign_in("spacey", "password ", HOME).await.unwrap();
}

#[tokio::test]
async fn unknown_name_and_wrong_password_give_the_same_answer() {
    let accounts = in_memory(fast());
    accounts.create("ada", PASSWORD, false).await.unwrap();
    let wrong = accounts
        .sign_in("ada", "not the password", HOME)
        .await
        .unwrap_err();
    let unknown = accounts.sign_in("grace", PASSWORD, HOME).await.unwrap_err();
    // Not even a possible name: still the same answer.
    let impossible = accounts
        .sign_in(&"x".repeat(40), PASSWORD, HOME)
        .await
        .unwrap_err();
    for err in [&wrong, &unknown, &impossible] {
        assert!(matches!(err, AccountError::BadCredentials), "{err:?}");
        assert_eq!(err.code(), "bad_credentials");
        assert_eq!(err.status(), 401);
        assert_eq!(err.retry_after(), None);
        assert_eq!(err.to_string(), wrong.to_string());
    }
    assert_eq!(wrong.to_string(), "wrong name or password");
}

#[tokio::test]
async fn the_teacher_name_needs_the_teacher_token() {
    let accounts = in_memory(AccountsConfig {
        teacher: Some("Teacher".into()),
        ..fast()
    });
    // Reserved from the start: no guest may post as the teacher either.
    assert!(accounts.is_account_name("TEACHER"));

    match accounts.create("teacher", PASSWORD, false).await {
        Err(err @ AccountError::NameReserved) => {
            assert_eq!(err.code(), "name_reserved");
            assert_eq!(err.status(), 403);
        }
        other => panic!("expected name_reserved, got {other:?}"),
    }
    // Nobody can sign in as the teacher before the account exists.
    assert!(matches!(
        accounts.sign_in("Teacher", PASSWORD, HOME).await,
        Err(AccountError::BadCredentials)
    ));

    let teacher = accounts.create("Teacher", PASSWORD, true).await.unwrap();
    assert_eq!(teacher.session.role, Role::Teacher);
    let again = accounts.sign_in("teacher", PASSWORD, HOME).await.unwrap();
    assert_eq!(again.session.role, Role::Teacher);
    assert_eq!(
        accounts.session(again.token.as_str()).unwrap().role,
        Role::Teacher
    );
    assert_taken(accounts.create("TEACHER", PASSWORD, true).await);

    // The token does not make anyone else a teacher.
    let student = accounts.create("Ada", PASSWORD, true).await.unwrap();
    assert_eq!(student.session.role, Role::Student);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_name_make_exactly_one_account() {
    let accounts = in_memory(fast());
    // Sixteen people, one name written in four ways, all at once.
    let spellings = ["Zoë", "ZOË", "zoe\u{308}", " zoË "];
    let attempts: Vec<_> = (0..16)
        .map(|i| {
            let accounts = accounts.clone();
            let name = spellings[i % spellings.len()];
            tokio::spawn(async move { accounts.create(name, PASSWORD, false).await })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(AccountError::NameTaken) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file_still_make_exactly_one_account() {
    // Each handle's memory knows only its own accounts, so only the
    // database's UNIQUE constraint can stop the second one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let a = Accounts::open(&path, fast()).unwrap();
    let b = Accounts::open(&path, fast()).unwrap();
    for round in 0..20 {
        let name = format!("student{round}");
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let (a, name) = (a.clone(), name.clone());
                async move { a.create(&name, PASSWORD, false).await }
            }),
            tokio::spawn({
                let (b, name) = (b.clone(), name.to_uppercase());
                async move { b.create(&name, PASSWORD, false).await }
            }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let wins = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
        assert_eq!(wins, 1, "round {round}: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            assert!(matches!(r, Ok(_) | Err(AccountError::NameTaken)), "{r:?}");
        }
    }
}

#[tokio::test]
async fn guests_cannot_borrow_an_account_name() {
    let accounts = in_memory(fast());
    assert!(!accounts.is_account_name("Ada"));
    accounts.create("Ada", PASSWORD, false).await.unwrap();
    accounts.create("Straße", PASSWORD, false).await.unwrap();
    for taken in ["Ada", "ada", " ADA\t", "strasse", "STRASSE"] {
        assert!(accounts.is_account_name(taken), "{taken:?}");
    }
    for free in ["Adam", "Ad a", "", "   ", &"a".repeat(40)] {
        assert!(!accounts.is_account_name(free), "{free:?}");
    }
}

#[tokio::test]
async fn the_teacher_sees_who_is_signed_in() {
    let clock = ManualClock::new(1_000_000);
    let accounts =
        Accounts::open_with_clock(Path::new(":memory:"), fast(), Arc::new(clock.clone())).unwrap();
    assert!(accounts.signed_in().is_empty());

    let ada_laptop = accounts.create("ada", PASSWORD, false).await.unwrap();
    let ada_phone = accounts.sign_in("ADA", PASSWORD, HOME).await.unwrap();
    accounts.create("Grace", PASSWORD, false).await.unwrap();
    clock.advance(Duration::from_secs(60));
    // Ada's phone makes a request a minute later.
    assert!(accounts.session(ada_phone.token.as_str()).is_some());

    let list = accounts.signed_in();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].name.as_str(), list[0].sessions), ("ada", 2));
    assert_eq!(list[0].role, Role::Student);
    assert_eq!(list[0].last_seen_ms, 1_060_000);
    assert_eq!((list[1].name.as_str(), list[1].sessions), ("Grace", 1));
    assert_eq!(list[1].last_seen_ms, 1_000_000);

    accounts.sign_out(ada_laptop.token.as_str()).await.unwrap();
    let list = accounts.signed_in();
    assert_eq!((list[0].name.as_str(), list[0].sessions), ("ada", 1));
}
