//! A read of one table at one cut, planned once for all the parts of a
//! split read: whether it goes through a base image, and then the log's
//! changes since that image, read by the first part that needs them and
//! shared with the others, rather than read again for every part; and
//! otherwise how it walks the history, decided once from one sample of
//! the table's keys rather than by every part.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Result, StoreError};
use crate::ids::TableId;
use crate::keys::KeyRange;
use crate::lsn::Lsn;
use crate::mvcc::{ScanRow, ScanStats};
use crate::store::image::{ImagePlan, Overlay};
use crate::store::window::Window;
use crate::store::Store;

/// How one table is read at one cut; see [`Store::plan_table_read`].
pub struct TableRead {
    table: TableId,
    cut: Lsn,
    dead_before: Option<Lsn>,
    image: Option<ImageRead>,
    /// Whether the walk goes through `versions` alone, once decided.
    through_versions: Mutex<Option<bool>>,
}

impl std::fmt::Debug for TableRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableRead")
            .field("table", &self.table)
            .field("cut", &self.cut)
            .field("dead_before", &self.dead_before)
            .field("image", &self.image.as_ref().map(|i| i.plan.at()))
            .finish()
    }
}

struct ImageRead {
    plan: ImagePlan,
    window: Mutex<WindowState>,
}

enum WindowState {
    Unread,
    /// Something in the window keeps the image from being read past.
    Unusable,
    Read(Arc<Window>),
}

impl TableRead {
    /// The base image the read goes through, if any.
    pub fn image(&self) -> Option<Lsn> {
        self.image.as_ref().map(|i| i.plan.at())
    }
}

impl Store {
    /// Plans the read of `table` at `cut` ([`Store::scan_range_as_of`]),
    /// for the parts of a split read to share: versions older than
    /// `dead_before` (the table's last reset at or before the cut) are
    /// treated as gone.
    pub fn plan_table_read(&self, table: TableId, cut: Lsn, dead_before: Option<Lsn>) -> Result<TableRead> {
        let image = self.image_plan(table, cut, dead_before)?.map(|plan| ImageRead {
            plan,
            window: Mutex::new(WindowState::Unread),
        });
        Ok(TableRead {
            table,
            cut,
            dead_before,
            image,
            through_versions: Mutex::new(None),
        })
    }

    /// The rows of `read`'s table at its cut whose keys lie in `range`, in
    /// key order, as [`Store::scan_range_as_of`] hands them.
    pub fn scan_planned<E: From<StoreError>>(
        &self,
        read: &TableRead,
        range: &KeyRange,
        f: impl FnMut(ScanRow<'_>) -> std::result::Result<ControlFlow<()>, E>,
    ) -> std::result::Result<ScanStats, E> {
        if let Some(image) = &read.image {
            if let Overlay::Run(run) = image.plan.overlay() {
                return self.scan_from_run(&image.plan, &run, read.cut, range, f);
            }
            if let Some(window) = self.window_of(image, read.cut)? {
                return self.scan_from_image(&image.plan, &window, range, f);
            }
        }
        let through_versions = self.walk_of(read)?;
        self.scan_walking_history(read.table, range, read.cut, read.dead_before, through_versions, f)
    }

    /// How `read` walks the history, decided by the first part to ask; the
    /// others wait for its answer rather than sample the keys again.
    fn walk_of(&self, read: &TableRead) -> Result<bool> {
        let mut decided = read.through_versions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(through_versions) = *decided {
            return Ok(through_versions);
        }
        let through_versions = self.walks_versions(read.table, read.cut)?;
        *decided = Some(through_versions);
        Ok(through_versions)
    }

    /// The changes since `image`, read by the first part to ask; the others
    /// wait for it rather than read them again.
    fn window_of(&self, image: &ImageRead, cut: Lsn) -> Result<Option<Arc<Window>>> {
        let mut state = image.window.lock().unwrap_or_else(PoisonError::into_inner);
        if let WindowState::Unread = *state {
            *state = match self.window_since(&image.plan, cut)? {
                Some(w) => WindowState::Read(Arc::new(w)),
                None => WindowState::Unusable,
            };
        }
        Ok(match &*state {
            WindowState::Read(w) => Some(w.clone()),
            WindowState::Unread | WindowState::Unusable => None,
        })
    }
}
