use billing_domain::ports::{PlanRepository, RepoError};
use billing_domain::{
    ConflictField, Features, PlanCode, PlanId, PlanKey, PlanPatch, PriceRef, TrialDays,
};

use crate::{new_plan, setup, usd};

#[tokio::test]
async fn a_created_plan_is_found_by_id_code_and_price() {
    let (_db, store) = setup();
    let mut input = new_plan("plan-pro", "price_pro");
    input.trial_days = Some(TrialDays::new(14).unwrap());

    let plan = store.create(input).await.unwrap();

    assert!(plan.active);
    assert_eq!(plan.code.as_str(), "plan-pro");
    assert_eq!(plan.amount, usd(2900));
    assert_eq!(plan.trial_days.map(TrialDays::get), Some(14));
    assert_eq!(
        store.get(&PlanKey::Id(plan.id)).await.unwrap(),
        Some(plan.clone())
    );
    assert_eq!(
        store
            .get(&PlanKey::Code(PlanCode::parse("plan-pro").unwrap()))
            .await
            .unwrap(),
        Some(plan.clone())
    );
    assert_eq!(
        store
            .find_by_price(&PriceRef::parse("price_pro").unwrap())
            .await
            .unwrap(),
        Some(plan)
    );
    assert!(store
        .get(&PlanKey::Id(PlanId::new()))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_taken_code_or_price_is_a_conflict_naming_the_field() {
    let (_db, store) = setup();
    store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap();

    let same_code = store.create(new_plan("plan-pro", "price_other")).await;
    let same_price = store.create(new_plan("plan-other", "price_pro")).await;

    assert!(
        matches!(same_code, Err(RepoError::Conflict(ConflictField::PlanCode))),
        "{same_code:?}"
    );
    assert!(
        matches!(
            same_price,
            Err(RepoError::Conflict(ConflictField::StripePrice))
        ),
        "{same_price:?}"
    );
}

#[tokio::test]
async fn plans_are_listed_by_code_and_inactive_ones_only_on_request() {
    let (_db, store) = setup();
    let zeta = store.create(new_plan("zeta", "price_z")).await.unwrap();
    store.create(new_plan("alpha", "price_a")).await.unwrap();
    store
        .update(
            zeta.id,
            PlanPatch {
                active: Some(false),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap();

    let active: Vec<_> = store
        .list(false)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.code.to_string())
        .collect();
    let all: Vec<_> = store
        .list(true)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.code.to_string())
        .collect();

    assert_eq!(active, ["alpha"]);
    assert_eq!(all, ["alpha", "zeta"]);
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_it_names() {
    let (_db, store) = setup();
    let mut input = new_plan("plan-pro", "price_pro");
    input.trial_days = Some(TrialDays::new(7).unwrap());
    let plan = store.create(input).await.unwrap();

    let patched = store
        .update(
            plan.id,
            PlanPatch {
                name: Some("Pro 2".into()),
                price: Some(PriceRef::parse("price_pro_2").unwrap()),
                trial_days: Some(None),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();

    assert_eq!(patched.name, "Pro 2");
    assert_eq!(patched.price.as_str(), "price_pro_2");
    assert_eq!(patched.trial_days, None);
    assert_eq!(patched.amount, plan.amount);
    assert_eq!(patched.code, plan.code);
    assert!(patched.active);
    assert!(patched.updated_at >= plan.updated_at);
    assert_eq!(patched.created_at, plan.created_at);
}

#[tokio::test]
async fn an_empty_patch_or_an_unknown_plan_changes_nothing() {
    let (_db, store) = setup();
    let plan = store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap();

    let same = store.update(plan.id, PlanPatch::default()).await.unwrap();
    let missing = store
        .update(
            PlanId::new(),
            PlanPatch {
                active: Some(false),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap();

    assert_eq!(same, Some(plan));
    assert_eq!(missing, None);
}

#[tokio::test]
async fn patching_in_a_taken_price_is_a_conflict() {
    let (_db, store) = setup();
    store.create(new_plan("plan-a", "price_a")).await.unwrap();
    let b = store.create(new_plan("plan-b", "price_b")).await.unwrap();

    let result = store
        .update(
            b.id,
            PlanPatch {
                price: Some(PriceRef::parse("price_a").unwrap()),
                ..PlanPatch::default()
            },
        )
        .await;

    assert!(
        matches!(result, Err(RepoError::Conflict(ConflictField::StripePrice))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_stored_row_the_domain_refuses_is_unexpected_not_a_panic() {
    let (db, store) = setup();
    let id = PlanId::new();
    db.execute(&format!(
        "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, interval) \
         VALUES ('{id}', 'Not A Code', 'Bad', 'price_bad', 100, 'usd', 'month')"
    ))
    .unwrap();

    let result = store.get(&PlanKey::Id(id)).await;

    assert!(
        matches!(result, Err(RepoError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn features_are_stored_in_order_and_replaced_by_a_patch() {
    let (_db, store) = setup();
    let mut input = new_plan("plan-pro", "price_pro");
    input.features = Features::parse(vec!["reports:export".into(), "api_v2".into()]).unwrap();

    let created = store.create(input).await.unwrap();
    let bare = store
        .create(new_plan("plan-basic", "price_basic"))
        .await
        .unwrap();
    let patched = store
        .update(
            created.id,
            PlanPatch {
                features: Some(Features::parse(vec!["seats.max-50".into()]).unwrap()),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let renamed = store
        .update(
            created.id,
            PlanPatch {
                name: Some("Pro 2".into()),
                ..PlanPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();

    assert_eq!(created.features.as_slice(), ["reports:export", "api_v2"]);
    assert!(bare.features.is_empty());
    assert_eq!(patched.features.as_slice(), ["seats.max-50"]);
    assert_eq!(
        renamed.features.as_slice(),
        ["seats.max-50"],
        "a patch without features keeps them"
    );
    assert_eq!(
        store.get(&PlanKey::Id(created.id)).await.unwrap().unwrap(),
        renamed
    );
}
