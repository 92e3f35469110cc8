mod support;
use changelog::*;
use support::*;

#[test]
fn dbg_case() {
    let seed: u64 = 7697852965837336731; let n = 13; let plan: u64 = 428721092823917639;
    let mut g = Gen::new(seed);
    let mut txns = vec![g.txn(8, false)];
    for _ in 1..n { let len = g.rng.range(1, 16); txns.push(g.txn(len, true)); }
    let model = Model::of(&txns);
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), Durability::Buffered);
    for t in &txns { store.append(std::slice::from_ref(t)).unwrap(); }
    let errs = differences(&store, &model, txns.len());
    println!("WHOLE: {}", errs.join("\n"));
    let bad = Lsn(0x1002551);
    for t in &txns { if t.commit.commit_lsn <= bad { println!("TXN {:?}", t.commit.commit_lsn); for r in &t.records { if r.tables().contains(&TableId(4)) || matches!(r, ChangeRecord::Truncate{..}) { println!("   {:?}", r); } } } }
    let _ = plan;
}
